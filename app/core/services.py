"""AppServices: builds, wires and closes every core service. The one wiring point; no singletons."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from app.core.catalog.calibration import FitCalibration
from app.core.engine.engine import Engine, GenerationObserver
from app.core.engine.result import ModelInfo
from app.core.fit_feedback import FitFeedback
from app.core.library.library import ModelLibrary
from app.core.library.model import LibraryModel
from app.core.library.sources import build_library
from app.core.load_options import LoadOptions
from app.core.server.app import ServerConfig
from app.core.server.request_log import RequestLog
from app.core.server.runner import ServerRunner
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings, SettingsStore
from app.core.usage.energy import open_energy_meter
from app.core.usage.ledger import UsageLedger
from app.core.usage.recorder import UsageRecorder

log = logging.getLogger(__name__)


@dataclass
class AppServices:
    paths: AppPaths
    settings_store: SettingsStore
    settings: Settings
    engine: Engine
    library: ModelLibrary
    ledger: UsageLedger
    fit_feedback: FitFeedback
    server: ServerRunner | None = field(default=None)
    # The endpoint's live request log (in memory, bounded), shown on the GUI's server page.
    request_log: RequestLog = field(default_factory=RequestLog)

    @classmethod
    def create(cls, paths: AppPaths | None = None) -> AppServices:
        paths = paths or AppPaths.from_env()
        paths.ensure()
        store = SettingsStore(paths.settings_file)
        settings = store.load()
        library = build_library(paths, settings)
        ledger = UsageLedger.open(paths)
        fit_feedback = FitFeedback(FitCalibration(paths.database_file))
        observers: list[GenerationObserver] = [fit_feedback]
        if settings.usage.record:
            observers.append(UsageRecorder(ledger, open_energy_meter(_nvml())))
        engine = Engine(max_pending=settings.engine.max_pending, observers=observers)
        return cls(
            paths=paths,
            settings_store=store,
            settings=settings,
            engine=engine,
            library=library,
            ledger=ledger,
            fit_feedback=fit_feedback,
        )

    def load_model(self, model: LibraryModel, options: LoadOptions) -> ModelInfo:
        """Load a library model with ``options`` on the engine thread and wait for it.

        The file opened is the one the library prepares for ``model`` (the starter model's parts
        joined), which replaces ``options.model_path``; the settings' thread count applies
        unless ``options`` name one.
        """
        path = self.library.local_path(model)
        load = replace(
            options,
            model_path=path,
            n_threads=options.n_threads or self.settings.engine.n_threads,
            model_id=options.model_id or model.name,
        )
        info = self.engine.load(load).result()
        self.fit_feedback.model_loaded(load, info)
        return info

    def start_server(self, config: ServerConfig) -> ServerRunner:
        self.stop_server()
        runner = ServerRunner(self, config)
        runner.start()
        self.server = runner
        return runner

    def stop_server(self) -> None:
        runner, self.server = self.server, None
        if runner is not None:
            runner.stop()

    def close(self) -> None:
        """Stop the server, then the engine, joining each thread."""
        self.stop_server()
        self.engine.close()
        self.ledger.close()
        self.fit_feedback.calibration.close()


def _nvml() -> Any | None:
    """The NVML module when the driver library can be imported, for measuring GPU energy."""
    try:
        from app.core.hardware.nvidia import import_pynvml

        return import_pynvml()
    except ImportError:
        return None
