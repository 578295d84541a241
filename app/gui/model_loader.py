"""Loading models off the GUI thread, and telling every page which model is loaded.

The app loads through the model pool, under the same memory rules as a request. The estimate the
Load dialog showed is kept beside the loaded model, so pages can show measured next to estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.core.catalog.estimator import MemoryEstimate
from app.core.engine.result import ModelInfo
from app.core.errors import Cancelled
from app.core.library.model import LibraryModel
from app.core.load_options import LoadOptions
from app.core.pool.keep_alive import KEEP_FOREVER
from app.core.services import AppServices
from app.gui.bridge import Bridge


@dataclass(frozen=True)
class LoadedModel:
    library_model: LibraryModel
    info: ModelInfo
    options: LoadOptions  # what the Load dialog (or the first-run default) asked for
    estimate: MemoryEstimate | None  # what the Load dialog predicted, if it could


class ModelLoader(QObject):
    loading_started = Signal(str)  # model name
    model_loaded = Signal(object)  # LoadedModel
    loading_failed = Signal(object)  # exception

    def __init__(self, services: AppServices, bridge: Bridge, parent: QObject | None = None):
        super().__init__(parent)
        self._services = services
        self._bridge = bridge
        self.loading: str | None = None
        self.current: LoadedModel | None = None

    def load(
        self, model: LibraryModel, options: LoadOptions, estimate: MemoryEstimate | None = None
    ) -> None:
        if self.loading is not None:
            return
        self.loading = model.name
        self.loading_started.emit(model.name)

        def work() -> ModelInfo:
            # Loaded from the app: kept until the user unloads it (or memory needs it).
            return self._services.load_model(model, options, keep_alive_s=KEEP_FOREVER)

        def loaded(info: ModelInfo) -> None:
            self.loading = None
            self.current = LoadedModel(model, info, options, estimate)
            self.model_loaded.emit(self.current)

        def failed(exc: BaseException) -> None:
            self.loading = None
            # The pool keeps what was loaded before, unless this load was its reload.
            current = self.current
            if current is not None and self._services.pool.find(current.info.model_id) is None:
                self.current = None
            self.loading_failed.emit(exc)

        self._bridge.run(work, loaded, failed, owner=self)

    def forget_unloaded(self) -> None:
        """Drop ``current`` once the pool no longer has it loaded (unloaded, evicted, or lost
        with a worker), so no page goes on showing a model that is gone."""
        current = self.current
        if current is None or self.loading is not None:
            return
        try:
            gone = self._services.pool.find(current.info.model_id) is None
        except Cancelled:  # Homefire is closing: the pool is gone with everything else
            gone = True
        if gone:
            self.current = None
