"""AppServices: builds, wires and closes every stateful core service. The one wiring point.

The desktop app, ``homefire serve`` and the other commands all get their stores, clients and
managers here, so each is built one way. Parts that cost something to start (threads, database
migrations, a keyring read) are built on first use: ``homefire ls`` never starts an engine.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar, cast

import psutil

from app.core.catalog.calibration import FitCalibration
from app.core.catalog.cluster import ClusterMember
from app.core.catalog.decode_speed import machine_bandwidth
from app.core.catalog.estimator import LoadPlan, ModelFacts, parallel_that_fits
from app.core.catalog.fit import Machine
from app.core.catalog.gguf_header import read_local_model
from app.core.catalog.hub import HubClient
from app.core.chats.store import ChatStore
from app.core.cluster.backend_process import Deadlines
from app.core.cluster.loader import backend_factory, probe_workers
from app.core.cluster.worker_process import WorkerProcess, worker_command
from app.core.downloads.manager import DownloadManager
from app.core.engine.engine import Engine, GenerationObserver
from app.core.engine.result import ModelInfo
from app.core.errors import AppError, Cancelled, ModelNotLoaded
from app.core.fit_feedback import FitFeedback
from app.core.hardware.detect import detect
from app.core.hardware.profile import HardwareProfile
from app.core.library.last_model import LastModelStore
from app.core.library.model import LibraryModel
from app.core.library.sources import build_library, other_tools_copies
from app.core.load_options import LoadOptions
from app.core.pool.budget import MemoryBudget
from app.core.pool.pool import ModelPool, PooledModel
from app.core.server.app import ServerConfig
from app.core.server.request_log import RequestLog
from app.core.server.runner import ServerRunner
from app.core.sizes import MIB
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings, SettingsStore
from app.core.usage.energy import open_energy_meter
from app.core.usage.ledger import UsageLedger
from app.core.usage.preferences import UsagePreferencesStore
from app.core.usage.recorder import UsageRecorder

log = logging.getLogger(__name__)

T = TypeVar("T")

# Threads first (downloads, then the model pool's engines, whose last replies checkpoint into
# the ledger), then the stores they write to.
_CLOSE_ORDER = (
    "download queue",
    "model pool",
    "usage ledger",
    "fit feedback",
    "chat store",
)

AUTO_PARALLEL_FALLBACK = 4


class AppServices:
    def __init__(self, paths: AppPaths, settings_store: SettingsStore, settings: Settings) -> None:
        self.paths = paths
        self.settings_store = settings_store
        self.settings = settings
        self.library = build_library(paths, settings)
        self.usage_preferences = UsagePreferencesStore.at(paths)
        self.last_model = LastModelStore.at(paths)
        # The endpoint's live request log (in memory, bounded), shown on the GUI's server page.
        self.request_log = RequestLog()
        self.server: ServerRunner | None = None
        # "Share this machine": a `homefire worker` child while the user shares it.
        self.shared_worker: WorkerProcess | None = None
        self._sharing_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._built: dict[str, tuple[object, Callable[[], None] | None]] = {}
        self._closed = False

    @classmethod
    def create(cls, paths: AppPaths | None = None) -> AppServices:
        paths = paths or AppPaths.from_env()
        paths.ensure()
        store = SettingsStore(paths.settings_file)
        return cls(paths, store, store.load())

    # -- built on first use ----------------------------------------------------------------------

    def _once(self, name: str, build: Callable[[], T], close: Callable[[T], None] | None) -> T:
        """Build a part once, though pages and workers may ask for it from several threads."""
        with self._lock_for(name):
            if name not in self._built:
                if self._closed:
                    raise Cancelled(f"Homefire is shutting down; the {name} is closed")
                part = build()
                self._built[name] = (part, (lambda: close(part)) if close else None)
            return cast(T, self._built[name][0])

    def _lock_for(self, name: str) -> threading.Lock:
        # One lock per part: a slow build (the keyring, a migration) holds up only its own part.
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())

    @property
    def ledger(self) -> UsageLedger:
        return self._once("usage ledger", lambda: UsageLedger.open(self.paths), UsageLedger.close)

    @property
    def fit_feedback(self) -> FitFeedback:
        return self._once(
            "fit feedback",
            lambda: FitFeedback(FitCalibration(self.paths.database_file)),
            lambda feedback: feedback.calibration.close(),
        )

    @property
    def pool(self) -> ModelPool:
        """The loaded models, each on its own engine; the app, ``serve`` and every dialect load
        and use models through it."""
        return self._once("model pool", self._build_pool, ModelPool.close)

    @property
    def chats(self) -> ChatStore:
        return self._once("chat store", lambda: ChatStore.open(self.paths), ChatStore.close)

    @property
    def hub(self) -> HubClient:
        # Reads the token from the keyring, which may wait on the desktop's secret service.
        return self._once("Hub client", HubClient.from_env, None)

    @property
    def downloads(self) -> DownloadManager:
        return self._once(
            "download queue",
            lambda: DownloadManager(self.paths.models_dir, self.hub, existing=other_tools_copies()),
            DownloadManager.close,
        )

    def _build_pool(self) -> ModelPool:
        observers: list[GenerationObserver] = [self.fit_feedback]
        if self.settings.usage.record:
            observers.append(UsageRecorder(self.ledger, open_energy_meter(_nvml())))
        engine_settings = self.settings.engine

        def engine(job_ids: Iterator[int]) -> Engine:
            settings = self.settings.engine  # read per engine: the app may have changed them
            return Engine(
                backend_factory=backend_factory(Deadlines(call_s=settings.worker_timeout_s)),
                max_pending=settings.max_pending,
                observers=observers,
                job_ids=job_ids,
            )

        budget_mb = engine_settings.memory_budget_mb
        budget = MemoryBudget(
            margin_bytes=engine_settings.memory_margin_mb * MIB,
            total_bytes=budget_mb * MIB if budget_mb is not None else None,
            machine=_machine,
        )
        return ModelPool(
            self.library,
            lambda: self.settings.engine,
            budget,
            engine_factory=engine,
            prepare=self._prepare_load,
            correction=self.fit_feedback.calibration.correction,
            on_loaded=self._model_loaded,
        )

    def open_stores(self) -> None:
        """Open the databases now, so a broken one stops start-up with its message.

        On failure what did open is closed again before the error propagates.
        """
        try:
            self.ledger  # noqa: B018 (opening is the point)
            self.fit_feedback  # noqa: B018
            self.chats  # noqa: B018
        except BaseException:
            self.close()
            raise

    # -- workflows -------------------------------------------------------------------------------

    def load_model(
        self, model: LibraryModel, options: LoadOptions, *, keep_alive_s: float | None = None
    ) -> ModelInfo:
        """Load a library model with ``options`` through the pool (its memory rules) and wait.

        ``keep_alive_s`` None: the settings' keep-alive for idle models."""
        return self.pool.load(model, options, keep_alive_s=keep_alive_s)

    def hold_model(self, name: str) -> PooledModel:
        """Hold the model ``name`` names for one of the app's own replies, loading it through
        the pool first when it is not loaded (blocks: call it off the GUI thread).

        The user picked it in the app, so it is loaded even with load on request off; the memory
        rules are the pool's either way (``InsufficientMemory``, ``PoolFull``)."""
        try:
            return self.pool.acquire(name).result()
        except ModelNotLoaded:
            if not name or self.settings.engine.load_on_request:
                raise
        model = self.library.resolve(name)
        self.load_model(model, LoadOptions(model.path, n_ctx=self.settings.engine.n_ctx))
        return self.pool.acquire(model.name).result()

    def _prepare_load(self, model: LibraryModel, options: LoadOptions) -> LoadOptions:
        """What a load really opens: the file the library prepares for ``model`` (the starter
        model's parts joined) replaces ``options.model_path``; the settings' thread count
        applies unless ``options`` name one. The sequence slots are the settings'
        ``engine.parallel``, else what the RAM available now holds."""
        path = self.library.local_path(model)
        parallel = self.settings.engine.parallel or _auto_parallel(path, options)
        return replace(
            options,
            model_path=path,
            n_threads=options.n_threads or self.settings.engine.n_threads,
            model_id=options.model_id or model.name,
            parallel=parallel,
        )

    def _model_loaded(self, options: LoadOptions, info: ModelInfo) -> None:
        if not options.workers:  # a split model's memory is not this process's to measure
            self.fit_feedback.model_loaded(options, info)

    def this_machine(self) -> HardwareProfile:
        """This machine, detected, with a RAM bandwidth measured here when no spec figure gives
        one (decode speeds recorded here refine it), so every estimate has a speed.

        Blocking: probes run commands, and the first call on a machine runs the copy benchmark.
        Reads the database only when it exists: asking about the machine never creates it.
        """
        here = self.paths.database_file.exists()
        calibration = self.fit_feedback.calibration if here else None
        return machine_bandwidth(detect(paths=self.paths), self.paths.data_dir, calibration)

    def worker_members(self, workers: Sequence[str]) -> list[ClusterMember]:
        """Live workers as members of a cluster plan, from the free memory each reports.

        Blocking: each probe ends within its deadline; the first worker that fails raises its
        ``WorkerError`` (unreachable, another protocol version, not a worker).
        """
        return [
            ClusterMember.reported(str(memory.address), memory.free_bytes, memory.description)
            for memory in probe_workers(workers)
        ]

    def start_server(self, config: ServerConfig) -> ServerRunner:
        self.stop_server()
        runner = ServerRunner(self.pool, config, self.request_log)
        runner.start()
        self.server = runner
        return runner

    def stop_server(self) -> None:
        runner, self.server = self.server, None
        if runner is not None:
            runner.stop()

    def share_machine(self, host: str, port: int, *, trust_network: bool) -> WorkerProcess:
        """Start ``homefire worker`` on ``host:port`` as a child process and wait until it
        listens (blocking). A worker already running is stopped first. ``WorkerError`` in the
        worker's own words when it cannot start (a busy port, a refused address)."""
        with self._sharing_lock:
            if self._closed:
                raise Cancelled("Homefire is shutting down")
            self._stop_sharing()
            worker = WorkerProcess(worker_command(host, port, trust_network=trust_network))
            worker.start()
            self.shared_worker = worker
            return worker

    def stop_sharing(self) -> None:
        """Stop the shared worker, if one runs (blocking, bounded by its stop deadline)."""
        with self._sharing_lock:
            self._stop_sharing()

    def _stop_sharing(self) -> None:
        worker, self.shared_worker = self.shared_worker, None
        if worker is not None:
            worker.stop()

    def close(self) -> None:
        """Stop the server and the shared worker, then downloads, then the engine, joining each
        thread; then the stores.

        Idempotent. A part never built is not built now; one being built is closed once built.
        """
        with self._locks_guard:
            if self._closed:
                return
            self._closed = True
        self.stop_server()
        self.stop_sharing()
        for name in _CLOSE_ORDER:
            with self._lock_for(name):
                built = self._built.pop(name, None)
            if built is not None and built[1] is not None:
                built[1]()

    def __enter__(self) -> AppServices:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _auto_parallel(path: Path, options: LoadOptions) -> int:
    """Sequence slots for a load with no ``engine.parallel`` set: on the CPU as many (2..8) as
    the RAM available now holds; with GPU layers (or a header the estimator cannot read)
    llama-server's own default of 4."""
    if options.n_gpu_layers != 0:
        return AUTO_PARALLEL_FALLBACK
    try:
        facts = ModelFacts.from_header(read_local_model(path))
    except AppError:
        return AUTO_PARALLEL_FALLBACK
    plan = LoadPlan.from_options(replace(options, model_path=path), gpu_backend=None)
    return parallel_that_fits(facts, plan, psutil.virtual_memory().available)


def _machine() -> Machine | None:
    """The GPUs this build drives and their free memory now (asked only for offloaded loads)."""
    from app.core.hardware.detect import detect

    try:
        return Machine.of(detect())
    except AppError as exc:
        log.warning("cannot read the GPUs' free memory: %s", exc.user_message)
        return None


def _nvml() -> Any | None:
    """The NVML module when the driver library can be imported, for measuring GPU energy."""
    try:
        from app.core.hardware.nvidia import import_pynvml

        return import_pynvml()
    except ImportError:
        return None
