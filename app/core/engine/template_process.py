"""Run chat-template renders in warm child processes that cannot outgrow their time and memory bounds.

Jinja's sandbox blocks unsafe attributes, but not work done inside one C call: ``'x'.ljust(n)``,
``'%0*d' % ...``, ``center``, ``indent``, ``wordwrap`` or ``tojson(indent=n)`` allocate
gigabytes in a single step, and a loop over a long string runs no code a Python-level budget
could count. Capping the arguments of every such call would be a list that is never complete;
a process boundary holds whatever the template does.

A ``RenderPool`` keeps a few children alive and sends them renders over a pipe, so a render
costs a pipe round trip, not a fork. Every bound holds per render:

* before each render the child caps its address space (``RLIMIT_AS``) at its current size plus
  the memory bound, so an oversized allocation fails with ``MemoryError`` inside the child;
  the cap is lifted between renders, so the input it receives is not part of the budget;
* the parent kills the child at the deadline, and also when its resident size grows past the
  bound (macOS does not enforce ``RLIMIT_AS``, so there the watch is what holds); the next
  render starts a fresh child;
* a child that answered "out of memory", grew past half the bound since it started, or
  rendered ``RENDERS_PER_CHILD`` times is replaced, so no render inherits an earlier one's
  garbage;
* ``RLIMIT_CPU`` counts a process's whole life, so the child moves its soft limit to "CPU time
  so far plus the deadline" before each render: it ends a render whose parent died mid-render.
  An idle child exits when its pipe closes, which the parent's death does.

Children fork from multiprocessing's fork server, which is started once, single-threaded, with
the renderer already imported: a child never holds a copy of the app's threads.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

import psutil

from app.core.errors import AppError, TemplateError

RENDERS_PER_CHILD = 1000
_STARTUP_GUARD_S = 30.0  # a hang guard for starting a child, not part of the render budget
_WATCH_INTERVAL_S = 0.02
# "__main__" is multiprocessing's default: imported once in the server, not again in each child.
_PRELOAD = ["__main__", "app.core.engine.chat_template"]


@dataclass(frozen=True)
class RenderLimits:
    deadline_s: float = 2.0
    memory_bytes: int = 64 * 2**20


class _ChildGone(Exception):
    """The child died while idle: the request never reached it, so a fresh child may take it."""


@dataclass(frozen=True)
class _Answer:
    kind: str  # "ok", "error" (payload: the message) or "memory"
    payload: str | None
    worn: bool  # the child asks to be replaced


class RenderPool:
    """Up to ``size`` warm children running ``target`` under ``limits``; safe from any thread.

    ``target`` must be a module-level function (children import it by name) and should raise
    ``TemplateError`` for failures it recognises; its message is passed on as is. Children
    start on demand; ``close`` stops them all.
    """

    def __init__(
        self,
        target: Callable[..., str],
        limits: RenderLimits,
        size: int = 2,
        renders_per_child: int = RENDERS_PER_CHILD,
    ) -> None:
        self._target = target
        self._limits = limits
        self._renders_per_child = renders_per_child
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()  # guards everything below
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._request_ids = itertools.count(1)
        self._closed = False

    def run(self, *args: Any) -> str:
        """``target(*args)`` in a child; every failure is a ``TemplateError``."""
        with self._slots:
            child = self._take()
            reusable = False
            try:
                try:
                    answer = child.ask(self._next_id(), args)
                except _ChildGone:
                    self._stop(child)
                    child = self._take()
                    answer = child.ask(self._next_id(), args)
                reusable = answer.kind != "memory" and not answer.worn
            except _ChildGone as exc:
                raise TemplateError("the chat template renderer stopped before rendering") from exc
            finally:
                self._give_back(child, reusable)
        if answer.kind == "memory":
            raise _too_big(self._limits)
        if answer.kind == "error":
            raise TemplateError(str(answer.payload))
        return str(answer.payload)

    def close(self) -> None:
        """Stop every child, idle or rendering (that render fails); later runs fail."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            for child in self._busy:
                child.kill()  # its render fails at once; the rendering thread then stops it
        for child in idle:
            child.stop()

    def __enter__(self) -> RenderPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _next_id(self) -> int:
        with self._lock:
            return next(self._request_ids)

    def _take(self) -> _Child:
        with self._lock:
            self._raise_if_closed()
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    self._busy.add(child)
                    return child
                child.stop()  # killed from outside while idle
        # Started outside the lock: other threads keep taking and giving back meanwhile.
        child = _Child(self._target, self._limits, self._renders_per_child)
        with self._lock:
            closed = self._closed
            if not closed:
                self._busy.add(child)
        if closed:
            child.stop()
            self._raise_if_closed()
        return child

    def _give_back(self, child: _Child, reusable: bool) -> None:
        with self._lock:
            self._busy.discard(child)
            if reusable and not self._closed:
                self._idle.append(child)
                return
        child.stop()

    def _stop(self, child: _Child) -> None:
        with self._lock:
            self._busy.discard(child)
        child.stop()

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise TemplateError("the chat template renderer has been closed")


class _Child:
    """One renderer process and the parent's end of its pipe; used by one thread at a time."""

    def __init__(
        self, target: Callable[..., str], limits: RenderLimits, renders_per_child: int
    ) -> None:
        self._limits = limits
        self._stopped = False
        context = _context()
        self._conn, child_end = context.Pipe()
        # The child's resident size when its current render began (0: not yet), written into
        # shared memory rather than sent, so the parent is not woken in the middle of a render.
        self._render_base = context.RawValue("q", 0)
        self._process = context.Process(
            target=_child_main,
            args=(child_end, self._render_base, limits, renders_per_child, target),
            name="chat-template",
            daemon=True,
        )
        try:
            self._process.start()
        except OSError as exc:
            self._conn.close()
            raise TemplateError(f"could not start the chat template renderer: {exc}") from exc
        finally:
            child_end.close()
        try:
            if not self._conn.poll(_STARTUP_GUARD_S):
                raise TemplateError("the chat template renderer did not start")
            self._conn.recv()  # "ready"
        except (EOFError, OSError) as exc:
            self.stop()
            raise TemplateError("the chat template renderer stopped while starting") from exc
        except TemplateError:
            self.stop()
            raise
        self._watched = _watch(self._process.pid)

    def alive(self) -> bool:
        return self._process.is_alive()

    def ask(self, request_id: int, args: tuple[Any, ...]) -> _Answer:
        """Send one render and wait for its answer; raises ``TemplateError`` (the child is then
        unusable) or ``_ChildGone``."""
        self._render_base.value = 0
        try:
            self._conn.send((request_id, args))
        except OSError as exc:
            raise _ChildGone from exc
        deadline = time.monotonic() + self._limits.deadline_s
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TemplateError(
                        f"the model's chat template was stopped: it took longer than "
                        f"{self._limits.deadline_s:g} s to render"
                    )
                if not self._conn.poll(min(_WATCH_INTERVAL_S, remaining)):
                    base = self._render_base.value
                    if base and _rss(self._watched) > base + self._limits.memory_bytes:
                        raise _too_big(self._limits)
                    continue
                answer_id, kind, payload, worn = self._conn.recv()
                if answer_id == request_id:  # never hand anyone another request's answer
                    return _Answer(kind, payload, worn)
        except (EOFError, OSError) as exc:
            # The child died without answering: killed by the OS (CPU limit, out of memory) or
            # from outside.
            self._process.join(1.0)
            raise TemplateError(
                f"the model's chat template renderer stopped (exit code {self._process.exitcode})"
            ) from exc

    def kill(self) -> None:
        if self._process.is_alive():
            self._process.kill()

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._conn.close()
        self.kill()
        self._process.join(_STARTUP_GUARD_S)
        if self._process.exitcode is not None:
            self._process.close()  # frees its sentinel descriptor now, not at garbage collection


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")  # Linux and macOS, the platforms we ship
    # Takes effect when the fork server first starts; later calls change nothing.
    context.set_forkserver_preload(_PRELOAD)
    return context


def _too_big(limits: RenderLimits) -> TemplateError:
    return TemplateError(
        f"the model's chat template was stopped: it needed more than "
        f"{limits.memory_bytes // 2**20} MiB to render"
    )


def _watch(pid: int | None) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None  # already finished: the pipe reports why


def _rss(process: psutil.Process | None) -> int:
    try:
        return int(process.memory_info().rss) if process is not None else 0
    except psutil.Error:
        return 0  # already gone: the poll on the pipe reports why


# -- child ----------------------------------------------------------------------------------------


def _child_main(
    conn: Connection,
    render_base: Any,
    limits: RenderLimits,
    renders_per_child: int,
    target: Callable[..., str],
) -> None:
    # Ctrl-C in a terminal reaches the whole process group; the parent decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    me = psutil.Process()
    start = me.memory_info()
    conn.send((0, "ready", None, False))
    for renders in itertools.count(1):
        try:
            request_id, args = conn.recv()
        except EOFError:
            return  # the parent closed the pipe, or died
        before = me.memory_info()
        _cap(limits, int(before.vms))
        render_base.value = int(before.rss)
        kind, payload = _render(target, args)
        _uncap()
        now = me.memory_info()
        grown = max(now.rss - start.rss, now.vms - start.vms)
        worn = kind == "memory" or renders >= renders_per_child or grown > limits.memory_bytes // 2
        conn.send((request_id, kind, payload, worn))


def _render(target: Callable[..., str], args: tuple[Any, ...]) -> tuple[str, str | None]:
    try:
        return "ok", target(*args)
    except MemoryError:
        return "memory", None
    except AppError as exc:
        return "error", exc.user_message
    except Exception as exc:  # noqa: BLE001 - the parent gets every failure as a message
        return "error", f"the model's chat template failed to render: {exc}"


def _cap(limits: RenderLimits, address_space: int) -> None:
    if sys.platform.startswith("linux"):
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(
            resource.RLIMIT_AS, (_at_most(address_space + limits.memory_bytes, hard), hard)
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = math.ceil(usage.ru_utime + usage.ru_stime + limits.deadline_s) + 2
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (_at_most(cpu_s, hard), hard))


def _uncap() -> None:
    if sys.platform.startswith("linux"):
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def _at_most(value: int, hard: int) -> int:
    return value if hard == resource.RLIM_INFINITY else min(value, hard)
