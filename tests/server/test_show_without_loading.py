"""Ollama's /api/show for a library model that is not loaded answers from its GGUF header and
loads nothing (Copilot asks it of every model /api/tags lists), and says the same as the model
says once loaded. Real ollama SDK, real HTTP, real llama.cpp on tiny GGUFs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from app.core.server.app import ServerConfig
from app.core.services import AppServices
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings, SettingsStore
from tests.fixtures.tiny_llama import CHATML_TEMPLATE, write_tiny_llama
from tests.server.conftest import LibraryServerFactory
from tests.server.tiny_coder import write_tiny_coder

Start = Callable[..., str]

# A reasoning model's template: the generation prompt opens a <think> block.
THINKING_TEMPLATE = CHATML_TEMPLATE.replace(
    "'<|im_start|>assistant\\n'", "'<|im_start|>assistant\\n<think>\\n'"
)
MODELS = ("show-coder", "show-plain", "show-thinker", "show-base")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("show-folder")
    write_tiny_coder(folder / "show-coder.gguf")  # FIM tokens, a template that renders tools
    write_tiny_llama(folder / "show-plain.gguf", seed=1)  # ChatML: no tools, no FIM
    write_tiny_llama(folder / "show-thinker.gguf", chat_template=THINKING_TEMPLATE, seed=2)
    write_tiny_llama(folder / "show-base.gguf", chat_template=None, seed=3)  # no template
    return folder


@pytest.fixture
def start(model_folder: Path, library_server: LibraryServerFactory) -> Start:
    """Homefire's server over the folder's models, none loaded."""

    def run(**engine: object) -> str:
        return library_server(model_folder, **{"n_ctx": 512, "parallel": 1, **engine})

    return run


def _loaded(url: str) -> list[str]:
    return [m["name"] for m in httpx.get(f"{url}/api/ps", timeout=10).json()["models"]]


def _shown(client: ollama.Client, name: str) -> dict[str, Any]:
    return client.show(name).model_dump(exclude={"modified_at"})


def test_show_of_an_unloaded_model_loads_nothing_and_agrees_with_the_loaded_model(
    start: Start,
) -> None:
    url = start()
    client = ollama.Client(host=url)
    listed = {m.model for m in client.list().models}
    assert set(MODELS) <= listed
    before = {name: _shown(client, name) for name in MODELS}
    assert _loaded(url) == []  # not one load for all those answers
    assert set(before["show-coder"]["capabilities"]) == {"completion", "tools", "insert"}
    assert before["show-plain"]["capabilities"] == ["completion"]
    assert before["show-thinker"]["capabilities"] == ["completion", "thinking"]
    assert before["show-base"]["capabilities"] == ["completion"]
    assert ".Suffix" in before["show-coder"]["template"]  # Continue reads FIM support here
    assert before["show-plain"]["modelinfo"]["llama.block_count"] == 2  # from the header
    assert before["show-plain"]["details"]["family"] == "llama"
    for name in MODELS:
        client.generate(model=name, prompt="")  # an empty prompt only loads the model
        assert name in _loaded(url)
        after = _shown(client, name)
        assert after["capabilities"] == before[name]["capabilities"], name
        assert after["details"] == before[name]["details"], name
        assert after["template"] == before[name]["template"], name
        assert after["parameters"] == before[name]["parameters"], name
        assert after["modelinfo"] == before[name]["modelinfo"], name
        client.generate(model=name, prompt="", keep_alive=0)  # unload: keep memory small
        assert name not in _loaded(url) or _eventually_unloaded(url, name)


def _eventually_unloaded(url: str, name: str) -> bool:
    for _ in range(300):
        if name not in _loaded(url):
            return True
        httpx.get(f"{url}/api/version", timeout=10)
    return name not in _loaded(url)


def test_show_names_unknown_and_ambiguous_models_as_other_routes_do(start: Start) -> None:
    url = start()
    client = ollama.Client(host=url)
    with pytest.raises(ollama.ResponseError) as unknown:
        client.show("no-such-model")
    assert unknown.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as ambiguous:
        client.show("show-")
    assert ambiguous.value.status_code == 400
    assert _loaded(url) == []


def test_with_load_on_request_off_show_answers_only_loaded_models(start: Start) -> None:
    url = start(load_on_request=False)
    client = ollama.Client(host=url)
    with pytest.raises(ollama.ResponseError) as refused:
        client.show("show-coder")
    assert refused.value.status_code == 404
    assert _loaded(url) == []


@pytest.mark.real_model
def test_the_starter_model_shows_the_same_before_and_after_its_load(
    starter_model: Path, tmp_path: Path
) -> None:
    # A real vocabulary (262k tokens: too long for the header reader to keep) and template.
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "starter-gemma.gguf").symlink_to(starter_model)
    settings = Settings(model_folders=[str(folder)])
    settings.engine.n_ctx = 512
    settings.engine.parallel = 1
    settings.engine.memory_margin_mb = 0
    SettingsStore(AppPaths.from_env().settings_file).save(settings)
    services = AppServices.create()
    try:
        url = services.start_server(ServerConfig(port=0)).url
        client = ollama.Client(host=url)
        before = _shown(client, "starter-gemma")
        assert _loaded(url) == []
        assert before["modelinfo"]["general.parameter_count"] > 0
        client.generate(model="starter-gemma", prompt="")
        assert _loaded(url) == ["starter-gemma"]
        after = _shown(client, "starter-gemma")
        for field in ("capabilities", "details", "template", "parameters", "modelinfo"):
            assert after[field] == before[field], field
    finally:
        services.close()
