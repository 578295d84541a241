"""``ModelPool``: every loaded model, each on its own ``Engine`` (thread, queue, slots).

Requests name a model; a loaded one serves at once, an unloaded one from the library is loaded
first when "load on request" is on, and every request for a model that is loading waits behind
that one load (a bounded number of them). A request holds its model busy until it ends, so busy
is exact: a busy or pinned model is never evicted.

Loads, reloads and unloads run one at a time on the pool's own thread, so each memory decision
sees the memory the previous one left. An idle model is unloaded when its keep-alive runs out
(one timer thread, no polling), when a load needs its memory (least recently used first), or
when the user unloads it.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from app.core.catalog.calibration import Correction
from app.core.catalog.gguf_header import read_local_model
from app.core.engine.chat_template import TemplateRenderer
from app.core.engine.engine import Engine, GenerationObserver
from app.core.engine.header_info import info_from_header
from app.core.engine.result import ModelInfo
from app.core.errors import (
    AppError,
    Cancelled,
    EngineBusy,
    ModelNotLoaded,
    UnknownModel,
    WorkerLost,
)
from app.core.library.library import ModelLibrary
from app.core.library.model import LibraryModel
from app.core.load_options import LoadOptions
from app.core.pool.budget import (
    MemoryBudget,
    MemoryNeed,
    Resident,
    choose_evictions,
    estimate_need,
)
from app.core.pool.keep_alive import ExpiryTimer, describe_keep_alive
from app.core.pool.names import resolve_name
from app.core.sizes import format_size
from app.core.storage.settings import EngineSettings

log = logging.getLogger(__name__)

# An engine for one model, told about generations by the pool's observers.
EngineFactory = Callable[[Iterator[int]], Engine]
# A library model and the options asked for, made ready to load (threads, slots, the file).
PrepareLoad = Callable[[LibraryModel, LoadOptions], LoadOptions]
Listener = Callable[[], None]
# A model split onto workers was unloaded because a worker was lost: its name, and why.
LossListener = Callable[[str, WorkerLost], None]
# The smallest context a request may ask a model to be loaded with (the settings' own floor).
MIN_CONTEXT = 256


@dataclass(frozen=True)
class LoadedModel:
    """What the pool shows of one loaded model (the Library page, /api/ps, the status bar)."""

    name: str
    info: ModelInfo
    engine: Engine
    memory_bytes: int
    memory_measured: bool  # False: the estimate, until a load's growth could be measured
    pinned: bool
    busy: int  # requests holding it now
    last_used: datetime
    expires_at: datetime | None  # None: kept until unloaded (pinned, busy or keep-alive < 0)
    keep_alive_s: float


class PooledModel:
    """One request's hold on a loaded model; ``release`` (or leaving the ``with``) ends it."""

    def __init__(self, name: str, engine: Engine, info: ModelInfo, release: Listener) -> None:
        self.name = name
        self.engine = engine
        self.info = info
        self._release = release
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._release()

    def __enter__(self) -> PooledModel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


@dataclass
class _Entry:
    name: str
    model: LibraryModel
    keep_alive_s: float
    ready: Future[ModelInfo] = field(default_factory=Future)
    engine: Engine | None = None
    info: ModelInfo | None = None
    options: LoadOptions | None = None
    need: MemoryNeed | None = None
    busy: int = 0
    waiters: int = 0
    pinned: bool = False
    last_used: float = 0.0  # monotonic
    last_used_wall: float = 0.0
    expires_at: float | None = None  # monotonic
    unload_when_idle: bool = False
    refused_ctx: int | None = None  # a context a reload could not fit: not tried again

    @property
    def loaded(self) -> bool:
        return self.info is not None and self.ready.done()

    def memory(self) -> tuple[int, bool]:
        """Bytes this model takes, and whether they were measured."""
        measured = self.info.rss_growth_bytes if self.info is not None else None
        if measured is not None and measured > 0:
            return measured, True
        return (self.need.ram_bytes if self.need else 0), False

    def matches(self, wanted: str) -> bool:
        """Clients name a loaded model by its id, file name or stem; Ollama ones add ``:latest``."""
        wanted = wanted.strip().lower()
        names = {self.name.lower(), self.model.path.name.lower(), self.model.path.stem.lower()}
        if self.info is not None:
            names.add(self.info.model_id.lower())
        return wanted in names or wanted.removesuffix(":latest") in names


class ModelPool:
    def __init__(
        self,
        library: ModelLibrary,
        settings: Callable[[], EngineSettings],
        budget: MemoryBudget,
        *,
        engine_factory: EngineFactory,
        prepare: PrepareLoad = lambda _model, options: options,
        correction: Callable[[], Correction | None] = lambda: None,
        on_loaded: Callable[[LoadOptions, ModelInfo], None] = lambda _options, _info: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._library = library
        self._settings = settings
        self._budget = budget
        self._engine_factory = engine_factory
        self._prepare = prepare
        self._correction = correction
        self._on_loaded = on_loaded
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # Every engine not yet closed, in the pool or on its way out: close() ends them all,
        # even one whose unload was queued behind the pool's last job.
        self._engines: set[Engine] = set()
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._loss_listeners: list[LossListener] = []
        self._observers: list[GenerationObserver] = []
        # One job-id sequence over every engine: observers key their bookkeeping on it.
        self._job_ids = itertools.count(1)
        self._closed = False
        # Loads, reloads and unloads, one at a time; name lookups that scan the library.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-pool")
        self._lookups = ThreadPoolExecutor(max_workers=2, thread_name_prefix="model-pool-names")
        self._timer = ExpiryTimer(self._expire, clock)
        # Probes the templates of models described without loading (starts nothing until used).
        self._templates = TemplateRenderer()

    # -- what is loaded (any thread) -----------------------------------------------------------

    def models(self) -> list[LoadedModel]:
        """Every loaded model, most recently used first."""
        with self._lock:
            loaded = [e for e in self._entries.values() if e.loaded]
            loaded.sort(key=lambda e: e.last_used, reverse=True)
            return [self._view(e) for e in loaded]

    def find(self, name: str) -> LoadedModel | None:
        """The loaded model ``name`` names, if it is loaded (never loads anything)."""
        with self._lock:
            entry = self._loaded_entry(name)
            return self._view(entry) if entry is not None and entry.loaded else None

    def default(self) -> LoadedModel | None:
        """The model a request that names none gets: the one loaded or used most recently."""
        models = self.models()
        return models[0] if models else None

    def loading(self) -> list[str]:
        with self._lock:
            return [e.name for e in self._entries.values() if not e.ready.done()]

    @property
    def loads_on_request(self) -> bool:
        return self._settings().load_on_request

    def resolve(self, name: str) -> LibraryModel:
        """The library model ``name`` names, loading nothing (scans the library: not on an event
        loop). Raises ``UnknownModel`` naming loaded and library models, or ``AmbiguousModel``."""
        with self._lock:
            loaded = [e.name for e in self._entries.values() if e.loaded]
        return resolve_name(name, self._library.models(), loaded)

    def describe(self, name: str) -> ModelInfo:
        """What the model ``name`` names can do, loading nothing: a loaded model's own info,
        else one read from its GGUF header at the context a load would open (scans the library
        and renders its template in a child process: not on an event loop). Raises
        ``UnknownModel``, ``AmbiguousModel`` or ``InvalidModelFile``."""
        loaded = self.find(name)
        if loaded is not None:
            return loaded.info
        model = self.resolve(name)
        header = read_local_model(model.path)
        n_ctx = self._settings().n_ctx
        return info_from_header(model.name, model.path, header, n_ctx, self._templates)

    def library_models(self) -> list[LibraryModel]:
        """Every model a request may name (what /v1/models lists with load on request on)."""
        return self._library.models()

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """``listener()`` runs after every load, unload, pin and busy change, on the thread that
        made it (the GUI relays it with a Qt signal). Returns what removes it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def add_loss_listener(self, listener: LossListener) -> Callable[[], None]:
        """``listener(name, error)`` runs when a model split onto workers is unloaded because a
        worker was lost (on that model's engine thread); ``error`` names the worker. The pool's
        listeners then hear the model is gone. Returns what removes it."""
        with self._lock:
            self._loss_listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._loss_listeners:
                    self._loss_listeners.remove(listener)

        return remove

    def add_observer(self, observer: GenerationObserver) -> None:
        """Told about every generation of every model, loaded now or later."""
        with self._lock:
            self._observers.append(observer)
            engines = [e.engine for e in self._entries.values() if e.engine is not None]
        for engine in engines:
            engine.add_observer(observer)

    # -- requests ------------------------------------------------------------------------------

    def acquire(
        self,
        name: str | None,
        *,
        n_ctx: int | None = None,
        keep_alive_s: float | None = None,
    ) -> Future[PooledModel]:
        """Hold the model ``name`` names (None or "": the default one) for one request.

        Resolves at once for a loaded model; otherwise after the load it starts or joins (load on
        request), or with the reason it cannot: ``UnknownModel``, ``AmbiguousModel``,
        ``ModelNotLoaded`` (load on request off), ``InsufficientMemory``, ``PoolFull``,
        ``EngineBusy`` (too many requests already wait for this load). ``n_ctx`` larger than the
        loaded context reloads at that context when it fits; ``keep_alive_s`` sets how long the
        model stays loaded once idle (0: unload when this request ends; negative: forever).
        """
        out: Future[PooledModel] = Future()
        try:
            self._acquire(name, n_ctx, keep_alive_s, out)
        except AppError as exc:  # every outcome arrives the same way: through the Future
            if out.set_running_or_notify_cancel():
                out.set_exception(exc)
        return out

    def _acquire(
        self,
        name: str | None,
        n_ctx: int | None,
        keep_alive_s: float | None,
        out: Future[PooledModel],
    ) -> None:
        wanted = (name or "").strip()
        if n_ctx is not None:
            n_ctx = max(n_ctx, MIN_CONTEXT)
        with self._lock:
            self._check_open()
            entry = self._loaded_entry(wanted) if wanted else self._default_entry()
            if entry is None and not wanted:
                raise ModelNotLoaded(
                    "no model is loaded; name a model in the request or load one in Homefire"
                )
            if entry is not None:
                self._join(entry, out, n_ctx, keep_alive_s)
                return
        if not self._settings().load_on_request:
            raise ModelNotLoaded(
                f"the model {wanted!r} is not loaded and loading models on request is off; "
                "load it in Homefire first"
            )
        # Resolving a new name scans the library (disk): off the caller's thread.
        self._lookups.submit(self._resolve_and_join, wanted, out, n_ctx, keep_alive_s)

    def _resolve_and_join(
        self, wanted: str, out: Future[PooledModel], n_ctx: int | None, keep_alive_s: float | None
    ) -> None:
        try:
            model = self.resolve(wanted)
            with self._lock:
                self._check_open()
                entry = self._entries.get(model.name)
                if entry is None:
                    entry = self._new_entry(model, keep_alive_s)
                    options = LoadOptions(
                        model.path,
                        n_ctx=n_ctx or self._settings().n_ctx,
                        n_threads=self._settings().n_threads,
                        model_id=model.name,
                    )
                    self._start_load(entry, options)
                self._join(entry, out, n_ctx, keep_alive_s)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting request
            if out.set_running_or_notify_cancel():
                out.set_exception(exc)

    def _join(
        self,
        entry: _Entry,
        out: Future[PooledModel],
        n_ctx: int | None,
        keep_alive_s: float | None,
    ) -> None:
        """Hold ``entry`` for ``out`` now, or once its load ends (lock held)."""
        if keep_alive_s is not None:
            entry.keep_alive_s = keep_alive_s
            entry.unload_when_idle = False
        info = entry.info
        if entry.loaded and info is not None:
            bigger = n_ctx is not None and n_ctx > info.n_ctx
            refused = (
                entry.refused_ctx is not None and n_ctx is not None and n_ctx >= entry.refused_ctx
            )
            if bigger and not refused and entry.options is not None:
                log.info(
                    "reloading %s at context %d (loaded at %d) for a request",
                    entry.name,
                    n_ctx,
                    info.n_ctx,
                )
                self._start_load(entry, replace(entry.options, n_ctx=n_ctx or info.n_ctx))
            else:
                self._hold(entry, out)
                return
        limit = self._settings().max_pending
        if entry.waiters >= limit:
            raise EngineBusy(entry.waiters)
        entry.waiters += 1
        ready = entry.ready

        def loaded(done: Future[ModelInfo]) -> None:
            with self._lock:
                entry.waiters -= 1
                error = done.exception() if not done.cancelled() else Cancelled()
                if error is not None:
                    if out.set_running_or_notify_cancel():
                        out.set_exception(error)
                    return
                if entry.loaded:
                    # Re-judged: a reload that could not fit leaves the context it had.
                    self._hold(entry, out)
                else:
                    try:
                        self._join(entry, out, n_ctx, None)
                    except BaseException as exc:  # noqa: BLE001
                        if out.set_running_or_notify_cancel():
                            out.set_exception(exc)

        ready.add_done_callback(loaded)

    def _hold(self, entry: _Entry, out: Future[PooledModel]) -> None:
        """Mark ``entry`` busy for ``out`` unless its request has gone (lock held)."""
        if not out.set_running_or_notify_cancel():
            return
        assert entry.engine is not None
        assert entry.info is not None
        entry.busy += 1
        entry.expires_at = None
        self._touch(entry)
        out.set_result(
            PooledModel(entry.name, entry.engine, entry.info, lambda: self._release(entry))
        )

    def _release(self, entry: _Entry) -> None:
        with self._lock:
            entry.busy -= 1
            self._touch(entry)
            if entry.busy == 0 and self._entries.get(entry.name) is entry:
                self._idle(entry)
        self._notify()

    def _idle(self, entry: _Entry) -> None:
        """Start ``entry``'s idle time: unload now, at its deadline, or never (lock held)."""
        if entry.pinned:
            entry.expires_at = None
        elif entry.unload_when_idle or entry.keep_alive_s == 0:
            self._remove(entry, "its keep-alive is 0" if not entry.unload_when_idle else "asked")
        elif entry.keep_alive_s > 0:
            entry.expires_at = self._clock() + entry.keep_alive_s
            self._timer.reschedule(entry.expires_at)
        else:
            entry.expires_at = None

    # -- the app's own loads and unloads ---------------------------------------------------------

    def load(
        self, model: LibraryModel, options: LoadOptions, *, keep_alive_s: float | None = None
    ) -> ModelInfo:
        """Load ``model`` with ``options`` (the Load dialog's choices) under the same memory
        rules as a request, reloading it if it is loaded already; wait for the load.

        ``keep_alive_s`` None: the settings' keep-alive."""
        with self._lock:
            self._check_open()
            entry = self._entries.get(model.name)
            fresh = entry is None
            if entry is None:
                entry = self._new_entry(model, keep_alive_s)
            elif keep_alive_s is not None:
                entry.keep_alive_s = keep_alive_s
            # A load of it already running: the new options follow it.
            pending = None if fresh or entry.ready.done() else entry.ready
            outcome: Future[ModelInfo] = Future()
            if pending is None:
                self._start_load(entry, options, outcome)
        if pending is not None:
            pending.exception()  # waits; its outcome is not this load's
            return self.load(model, options, keep_alive_s=keep_alive_s)
        info = outcome.result()
        with self._lock:
            self._touch(entry)
            if entry.busy == 0:
                self._idle(entry)
        return info

    def unload(self, name: str) -> Future[None]:
        """Unload the model ``name`` names: now when idle, else when its last request ends.
        Nothing happens for a model that is not loaded."""
        done: Future[None] = Future()
        with self._lock:
            entry = self._loaded_entry(name) or self._entries.get(name)
            if entry is None:
                done.set_result(None)
                return done
            entry.unload_when_idle = True
            if entry.busy or not entry.ready.done():  # unloaded when its last request ends
                done.set_result(None)
                return done
            return self._remove(entry, "asked")

    def pin(self, name: str, pinned: bool) -> None:
        """A pinned model is never evicted nor unloaded for being idle."""
        with self._lock:
            entry = self._loaded_entry(name) or self._entries.get(name)
            if entry is None:
                raise UnknownModel(f"the model {name!r} is not loaded")
            entry.pinned = pinned
            if entry.busy == 0 and entry.loaded:
                self._idle(entry)
        self._notify()

    def close(self) -> None:
        """Stop the timer, finish the running load, unload every model and join each thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entries = list(self._entries.values())
            self._entries.clear()
        self._timer.close()
        self._lookups.shutdown(wait=True, cancel_futures=True)
        self._worker.shutdown(wait=True, cancel_futures=True)
        for entry in entries:
            if not entry.ready.done():
                entry.ready.set_exception(Cancelled("Homefire is shutting down"))
        with self._lock:
            engines, self._engines = list(self._engines), set()
        for engine in engines:
            engine.close()
        self._templates.close()

    # -- the pool thread -----------------------------------------------------------------------

    def _start_load(
        self, entry: _Entry, options: LoadOptions, outcome: Future[ModelInfo] | None = None
    ) -> Future[ModelInfo]:
        """Queue a load (or reload) of ``entry`` on the pool thread (lock held).

        Requests wait on the entry's ``ready`` Future; a reload that cannot fit resolves it
        with the model as loaded. ``outcome``, when given, is told that refusal instead (the
        app's own load, whose user must hear why)."""
        if entry.ready.done():
            entry.ready = Future()
        ready = entry.ready
        self._worker.submit(self._load, entry, ready, options, outcome)
        return ready

    def _load(
        self,
        entry: _Entry,
        ready: Future[ModelInfo],
        options: LoadOptions,
        outcome: Future[ModelInfo] | None,
    ) -> None:
        engine = entry.engine
        created = engine is None
        try:
            options = self._prepare(entry.model, options)
            machine = self._budget.machine() if options.n_gpu_layers else None
            need = estimate_need(options, machine, self._correction())
            loaded_info = entry.info
            try:
                victims = self._make_room(entry, need)
            except AppError as refusal:
                if loaded_info is None:
                    raise
                # A reload that does not fit: the loaded model stays and keeps serving.
                log.warning(
                    "%s stays at context %d: the load asked for (context %d) does not fit: %s",
                    entry.name,
                    loaded_info.n_ctx,
                    options.n_ctx,
                    refusal.user_message,
                )
                with self._lock:
                    entry.refused_ctx = options.n_ctx
                ready.set_result(loaded_info)
                if outcome is not None:
                    outcome.set_exception(refusal)
                return
            for victim in victims:
                self._close(victim)
            if engine is None:
                engine = self._new_engine()
                with self._lock:
                    entry.engine = engine
            info = engine.load(options).result()
            self._on_loaded(options, info)
        except BaseException as exc:  # noqa: BLE001 - handed to every request waiting
            with self._lock:
                if self._entries.get(entry.name) is entry:
                    del self._entries[entry.name]
                entry.info = None
            if engine is not None and (created or entry.engine is engine):
                engine.close()
                with self._lock:
                    self._engines.discard(engine)
            if not ready.done():
                ready.set_exception(exc)
            if outcome is not None:
                outcome.set_exception(exc)
            self._notify()
            return
        with self._lock:
            entry.info, entry.options, entry.need = info, options, need
            entry.refused_ctx = None
            self._touch(entry)
        memory, measured = entry.memory()
        log.info(
            "%s loaded: %s (%s); it unloads %s",
            entry.name,
            format_size(memory),
            "measured" if measured else "estimated",
            describe_keep_alive(entry.keep_alive_s),
        )
        ready.set_result(info)
        if outcome is not None:
            outcome.set_result(info)
        with self._lock:
            if entry.busy == 0 and entry.waiters == 0 and self._entries.get(entry.name) is entry:
                self._idle(entry)
        self._notify()

    def _make_room(self, entry: _Entry, need: MemoryNeed) -> list[_Entry]:
        """Take the idle models to evict for ``need`` out of the pool (pool thread)."""
        with self._lock:
            others = sorted(
                (e for e in self._entries.values() if e is not entry and e.engine is not None),
                key=lambda e: e.last_used,
            )
            residents = [
                Resident(
                    name=e.name,
                    ram_bytes=e.memory()[0],
                    gpu_bytes=e.need.gpu_bytes if e.need else 0,
                    idle=e.busy == 0 and not e.pinned and e.waiters == 0 and e.ready.done(),
                )
                for e in others
            ]
            machine = self._budget.machine() if need.gpu_bytes else None
            room = self._budget.room(residents, machine)
            if entry.info is not None:  # a reload gives back what the model holds now
                held, _ = entry.memory()
                room = replace(room, ram_bytes=room.ram_bytes + held)
            names = choose_evictions(
                entry.name, need, room, residents, self._settings().max_loaded_models
            )
            victims = [self._entries.pop(name) for name in names]
        for victim in victims:
            log.info("unloading %s (idle longest) to make room for %s", victim.name, entry.name)
        return victims

    def _new_engine(self) -> Engine:
        engine = self._engine_factory(self._job_ids)
        engine.add_loss_listener(lambda error: self._engine_lost(engine, error))
        with self._lock:
            self._engines.add(engine)
            observers = list(self._observers)
        for observer in observers:
            engine.add_observer(observer)
        return engine

    def _remove(self, entry: _Entry, why: str) -> Future[None]:
        """Take ``entry`` out of the pool and unload it on the pool thread (lock held)."""
        if self._entries.get(entry.name) is entry:
            del self._entries[entry.name]
        log.info("unloading %s (%s)", entry.name, why)
        try:
            return self._worker.submit(self._close, entry)
        except RuntimeError:  # closing: close() unloads it
            done: Future[None] = Future()
            done.set_result(None)
            return done

    def _close(self, entry: _Entry) -> None:
        engine = entry.engine
        if engine is not None:
            engine.close()
            with self._lock:
                self._engines.discard(engine)
        self._notify()

    def _engine_lost(self, engine: Engine, error: WorkerLost) -> None:
        """The engine unloaded its model itself (a worker was lost): the model leaves the pool,
        so it is listed no more and the next request loads it afresh (engine thread)."""
        with self._lock:
            entry = next((e for e in self._entries.values() if e.engine is engine), None)
            if entry is None:
                return
            entry.info = None
            self._remove(entry, "a worker was lost")
            listeners = list(self._loss_listeners)
        for listener in listeners:
            try:
                listener(entry.name, error)
            except Exception:  # one broken listener must not stop the engine
                log.exception("a model pool loss listener failed")

    def _expire(self) -> float | None:
        """Unload idle models whose keep-alive has run out; the next deadline (timer thread)."""
        now = self._clock()
        with self._lock:
            for entry in list(self._entries.values()):
                due = entry.expires_at
                if due is not None and due <= now and entry.busy == 0 and not entry.pinned:
                    self._remove(entry, "idle for its keep-alive")
            deadlines = [e.expires_at for e in self._entries.values() if e.expires_at is not None]
        return min(deadlines) if deadlines else None

    # -- helpers (lock held) -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Cancelled("Homefire is shutting down; the model pool is closed")

    def _new_entry(self, model: LibraryModel, keep_alive_s: float | None) -> _Entry:
        keep = self._settings().keep_alive_s if keep_alive_s is None else keep_alive_s
        entry = _Entry(name=model.name, model=model, keep_alive_s=keep)
        self._entries[model.name] = entry
        return entry

    def _loaded_entry(self, wanted: str) -> _Entry | None:
        exact = self._entries.get(wanted)
        if exact is not None:
            return exact
        found = [e for e in self._entries.values() if e.matches(wanted)]
        return found[0] if len(found) == 1 else None

    def _default_entry(self) -> _Entry | None:
        loaded = [e for e in self._entries.values() if e.loaded]
        return max(loaded, key=lambda e: e.last_used) if loaded else None

    def _touch(self, entry: _Entry) -> None:
        entry.last_used = self._clock()
        entry.last_used_wall = time.time()

    def _view(self, entry: _Entry) -> LoadedModel:
        assert entry.info is not None
        assert entry.engine is not None
        memory, measured = entry.memory()
        expires = None
        if entry.expires_at is not None:
            left = max(entry.expires_at - self._clock(), 0.0)
            expires = datetime.now(UTC) + timedelta(seconds=left)
        return LoadedModel(
            name=entry.name,
            info=entry.info,
            engine=entry.engine,
            memory_bytes=memory,
            memory_measured=measured,
            pinned=entry.pinned,
            busy=entry.busy,
            last_used=datetime.fromtimestamp(entry.last_used_wall, UTC),
            expires_at=expires,
            keep_alive_s=entry.keep_alive_s,
        )

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:  # one broken listener must not stop the pool
                log.exception("a model pool listener failed")
