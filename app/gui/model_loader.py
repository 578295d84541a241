"""Loading models off the GUI thread, and telling every page which model is loaded.

Only the GUI loads or unloads models (the endpoint serves whatever is loaded). The estimate the
Load dialog showed is kept beside the loaded model, so pages can show measured next to estimated.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from app.core.catalog.estimator import MemoryEstimate
from app.core.engine.request import KvCacheType
from app.core.engine.result import ModelInfo
from app.core.library.model import LibraryModel
from app.core.services import AppServices
from app.gui.bridge import Bridge


@dataclass(frozen=True)
class LoadChoice:
    """What the Load dialog (or the first-run default) asks the engine for."""

    n_ctx: int
    n_gpu_layers: int = 0
    flash_attn: bool = False
    kv_cache_type: KvCacheType = "f16"
    moe_experts_on_cpu_layers: int = 0


@dataclass(frozen=True)
class LoadedModel:
    library_model: LibraryModel
    info: ModelInfo
    choice: LoadChoice
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
        self, model: LibraryModel, choice: LoadChoice, estimate: MemoryEstimate | None = None
    ) -> None:
        if self.loading is not None:
            return
        self.loading = model.name
        self.loading_started.emit(model.name)

        def work() -> ModelInfo:
            return self._services.load_model(
                model,
                n_ctx=choice.n_ctx,
                n_gpu_layers=choice.n_gpu_layers,
                flash_attn=choice.flash_attn,
                kv_cache_type=choice.kv_cache_type,
                moe_experts_on_cpu_layers=choice.moe_experts_on_cpu_layers,
            )

        def loaded(info: ModelInfo) -> None:
            self.loading = None
            self.current = LoadedModel(model, info, choice, estimate)
            self.model_loaded.emit(self.current)

        def failed(exc: BaseException) -> None:
            self.loading = None
            self.current = None  # a failed load has unloaded the previous model
            self.loading_failed.emit(exc)

        self._bridge.run(work, loaded, failed, owner=self)
