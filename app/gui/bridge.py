"""Relays from core threads to the GUI thread: Futures, engine chunks and background calls.

Core services call back on their own threads (engine, download-N, http-server). Widgets may only
change on the GUI thread, so every callback is turned into a Qt signal emitted from the worker;
Qt queues it to the receiver's (GUI) thread. Work that blocks (loading a model, scanning disks,
detecting hardware, Hub searches) runs on a small named pool, never on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Signal, SignalInstance

from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.errors import Cancelled, WorkerLost
from app.core.pool.pool import ModelPool
from app.core.usage.ledger import UsageLedger

log = logging.getLogger(__name__)

T = TypeVar("T")
ResultSlot = Callable[[Any], None]
ErrorSlot = Callable[[BaseException], None]


class Bridge(QObject):
    """Delivers the outcome of any Future (core or background call) on the GUI thread."""

    _future_done = Signal(object, object, object, object)  # future, on_result, on_error, owner

    def __init__(self, parent: QObject | None = None, workers: int = 3) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gui-task")
        self._closed = False
        self._future_done.connect(self._on_self_future_done)

    def watch(
        self,
        future: Future[Any],
        on_result: ResultSlot,
        on_error: ErrorSlot | None = None,
        owner: QObject | None = None,
    ) -> None:
        """Call ``on_result(value)`` or ``on_error(exc)`` on the GUI thread when it is done.

        Nothing is called once ``owner`` (a widget) has been deleted or the bridge is closed. A
        cancelled Future reports ``Cancelled``.
        """
        future.add_done_callback(
            lambda done: self._future_done.emit(done, on_result, on_error, owner)
        )

    def run(
        self,
        work: Callable[[], T],
        on_result: ResultSlot,
        on_error: ErrorSlot | None = None,
        owner: QObject | None = None,
    ) -> Future[T]:
        """Run blocking ``work`` on the pool; deliver its outcome like :meth:`watch`.

        After :meth:`close` (the app is quitting) nothing runs: the Future comes back cancelled
        and no callback is called.
        """
        if self._closed:
            dropped: Future[T] = Future()
            dropped.cancel()
            return dropped
        future = self._pool.submit(work)
        self.watch(future, on_result, on_error, owner)
        return future

    def close(self) -> None:
        """Drop queued work and join the pool's threads."""
        if not self._closed:
            self._closed = True
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _on_self_future_done(
        self,
        future: Future[Any],
        on_result: ResultSlot,
        on_error: ErrorSlot | None,
        owner: QObject | None,
    ) -> None:
        # After close the pages are shut down and the core closed: an outcome has no one to tell.
        if self._closed or (owner is not None and not shiboken6.isValid(owner)):
            return
        try:
            value = future.result()
        except CancelledError:
            if on_error is not None:
                on_error(Cancelled())
            return
        except BaseException as exc:
            if on_error is not None:
                on_error(exc)
            else:
                log.error("background work failed", exc_info=exc)
            return
        on_result(value)


class GenerationRelay(QObject):
    """One generation: chunks and the end relayed from the engine thread as signals."""

    chunk_received = Signal(str)
    generation_finished = Signal(object)  # GenerationResult
    generation_failed = Signal(object)  # BaseException (Cancelled when stopped while queued)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cancel = CancelToken()
        self.future: Future[GenerationResult] | None = None

    def start(
        self,
        engine: Engine,
        request: GenerationRequest,
        on_chunk: Callable[[str], None] | None = None,
    ) -> Future[GenerationResult]:
        """Queue the generation; ``on_chunk`` runs on the engine thread before each relay.

        Raises ``EngineBusy`` at once when the engine's queue is full.
        """

        def chunk(text: str) -> None:
            if on_chunk is not None:
                on_chunk(text)
            self._emit(self.chunk_received, text)

        self.future = engine.generate(request, on_chunk=chunk, cancel=self.cancel)
        self.future.add_done_callback(self._emit_outcome)
        return self.future

    def stop(self) -> None:
        """Stop between tokens, or drop the job if it is still queued."""
        self.cancel.cancel()
        if self.future is not None:
            self.future.cancel()

    def _emit_outcome(self, future: Future[GenerationResult]) -> None:
        try:
            result = future.result()
        except CancelledError:
            self._emit(self.generation_failed, Cancelled())
        except BaseException as exc:  # noqa: BLE001 - relayed to the view
            self._emit(self.generation_failed, exc)
        else:
            self._emit(self.generation_finished, result)

    def _emit(self, signal: SignalInstance, value: object) -> None:
        # The view may have gone (window closed mid-reply): the engine thread carries on.
        if not shiboken6.isValid(self):
            return
        try:
            signal.emit(value)
        except RuntimeError:
            log.debug("generation relay deleted while the engine reported to it")


class PoolRelay(QObject):
    """The model pool's changes (loads, unloads, pins, busy), from any thread, as a signal;
    and a model unloaded because a worker holding part of it was lost.

    A change reported from another thread reaches the GUI thread later; one that arrives after
    ``close`` (Homefire shutting down, the pool already closed) is dropped there, so no page asks
    a closed pool for its models.
    """

    changed = Signal()
    model_lost = Signal(str, object)  # the model's name, the WorkerLost naming the worker
    _changed_anywhere = Signal()
    _lost_anywhere = Signal(str, object)

    def __init__(self, pool: ModelPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._closed = False
        # Auto connections: direct on the GUI thread, queued from the pool's and engines' threads.
        self._changed_anywhere.connect(self._relay_changed)
        self._lost_anywhere.connect(self._relay_lost)
        self._removers = [
            pool.add_listener(self._on_pool_changed),
            pool.add_loss_listener(self._on_pool_model_lost),
        ]

    def _on_pool_changed(self) -> None:
        if shiboken6.isValid(self):
            self._changed_anywhere.emit()

    def _on_pool_model_lost(self, name: str, error: WorkerLost) -> None:
        if shiboken6.isValid(self):
            self._lost_anywhere.emit(name, error)

    def _relay_changed(self) -> None:
        if not self._closed:
            self.changed.emit()

    def _relay_lost(self, name: str, error: WorkerLost) -> None:
        if not self._closed:
            self.model_lost.emit(name, error)

    def close(self) -> None:
        self._closed = True
        for remove in self._removers:
            remove()


class UsageRelay(QObject):
    """The usage ledger's live events (recorded on the engine thread) as a GUI-thread signal."""

    usage_recorded = Signal(object)  # UsageEvent

    def __init__(self, ledger: UsageLedger, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe = ledger.subscribe(self.usage_recorded.emit)

    def close(self) -> None:
        self._unsubscribe()
