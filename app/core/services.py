"""AppServices: builds, wires and closes every core service. The one wiring point; no singletons."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from app.core.engine.engine import Engine
from app.core.engine.request import LoadOptions
from app.core.engine.result import ModelInfo
from app.core.library.library import ModelLibrary
from app.core.library.model import LibraryModel
from app.core.library.starter import StarterSource
from app.core.server.app import ServerConfig
from app.core.server.runner import ServerRunner
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings, SettingsStore

log = logging.getLogger(__name__)


@dataclass
class AppServices:
    paths: AppPaths
    settings_store: SettingsStore
    settings: Settings
    engine: Engine
    library: ModelLibrary
    server: ServerRunner | None = field(default=None)

    @classmethod
    def create(cls, paths: AppPaths | None = None) -> AppServices:
        paths = paths or AppPaths.from_env()
        paths.ensure()
        store = SettingsStore(paths.settings_file)
        settings = store.load()
        engine = Engine(max_pending=settings.engine.max_pending)
        library = ModelLibrary([StarterSource(paths.models_dir / "starter")])
        return cls(
            paths=paths, settings_store=store, settings=settings, engine=engine, library=library
        )

    def load_model(
        self,
        model: LibraryModel,
        n_ctx: int | None = None,
        n_gpu_layers: int = 0,
        **options: object,
    ) -> ModelInfo:
        """Load a library model on the engine thread and wait for it."""
        path = self.library.local_path(model)
        load = LoadOptions(
            model_path=path,
            n_ctx=n_ctx or self.settings.engine.n_ctx,
            n_gpu_layers=n_gpu_layers,
            n_threads=self.settings.engine.n_threads,
            model_id=model.name,
            **options,  # type: ignore[arg-type]
        )
        return self.engine.load(load).result()

    def start_server(self, config: ServerConfig) -> ServerRunner:
        if self.server is not None:
            self.server.stop()
        runner = ServerRunner(self, config)
        runner.start()
        self.server = runner
        return runner

    def close(self) -> None:
        """Stop the server, then the engine, joining each thread."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        self.engine.close()
