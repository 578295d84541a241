from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.engine.result import GenerationResult
from app.core.load_options import LoadOptions
from app.core.server.app import ServerConfig
from app.core.services import AppServices
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings, SettingsStore

ServerFactory = Callable[..., AppServices]
# Starts a server over a model folder; engine settings as keyword arguments; returns its URL.
LibraryServerFactory = Callable[..., str]

# A tool both dialects' tests offer the model.
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture(autouse=True)
def no_server_thread_left() -> Iterator[None]:
    yield
    left = [
        t.name
        for t in threading.enumerate()
        if t.name in ("engine", "http-server") and t.is_alive()
    ]
    assert not left, f"a test left threads running: {left}"


@pytest.fixture
def library_server() -> Iterator[LibraryServerFactory]:
    """Homefire's server on 127.0.0.1:0 with no model loaded, over a library that includes
    ``folder``: the models load on request. Margin 0, so tiny models fit any machine."""
    started: list[AppServices] = []

    def run(folder: Path, **engine: object) -> str:
        settings = Settings(model_folders=[str(folder)])
        settings.engine.memory_margin_mb = 0
        for key, value in engine.items():
            setattr(settings.engine, key, value)
        SettingsStore(AppPaths.from_env().settings_file).save(settings)
        services = AppServices.create()
        started.append(services)
        return services.start_server(ServerConfig(port=0)).url

    yield run
    for services in started:
        services.close()


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Start Homefire's real server on 127.0.0.1:0 with a model file; closed after the test."""
    started: list[AppServices] = []

    def start(model: Path | None, n_ctx: int = 256, **config: object) -> AppServices:
        services = AppServices.create()
        started.append(services)
        if model is not None:
            # The slots the engine used to default to, whatever RAM this machine has now.
            services.settings.engine.parallel = services.settings.engine.parallel or 4
            options = LoadOptions(model_path=model, n_ctx=n_ctx, seed=3)
            services.load_model(services.library.resolve(str(model)), options)
        config.setdefault("port", 0)
        services.start_server(ServerConfig(**config))  # type: ignore[arg-type]
        return services

    yield start
    for services in started:
        services.close()


def base_url(services: AppServices) -> str:
    assert services.server is not None
    return services.server.url


@pytest.fixture(scope="session")
def tiny_coder_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random-weight GGUF with FIM tokens and a Hermes-style tools template."""
    from tests.server.tiny_coder import write_tiny_coder

    return write_tiny_coder(tmp_path_factory.mktemp("models") / "tiny-coder.gguf")


class TokenCounter:
    """Engine observer: the live token count of the running job, and every finished result."""

    def __init__(self) -> None:
        self.current = 0
        self.results: list[GenerationResult] = []
        self.changed = threading.Condition()

    def generation_started(self, *args: object) -> None:
        with self.changed:
            self.current = 0

    def generation_progressed(self, job_id: int, completion_tokens: int) -> None:
        with self.changed:
            self.current = completion_tokens
            self.changed.notify_all()

    def generation_finished(
        self, job_id: int, result: GenerationResult | None, error: object
    ) -> None:
        with self.changed:
            if result is not None:
                self.results.append(result)
            self.changed.notify_all()

    def wait_for_results(self, count: int, timeout_s: float = 120) -> list[GenerationResult]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.results) >= count, timeout_s)
            return list(self.results)


@pytest.fixture
def starter(serve: ServerFactory, starter_model: Path) -> tuple[AppServices, TokenCounter]:
    services = serve(starter_model, n_ctx=2048)
    counter = TokenCounter()
    services.pool.add_observer(counter)
    return services, counter
