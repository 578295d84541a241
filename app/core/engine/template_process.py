"""Run a chat-template render in a child process that cannot outgrow its time and memory bounds.

Jinja's sandbox blocks unsafe attributes, but not work done inside one C call: ``'x'.ljust(n)``,
``'%0*d' % ...``, ``center``, ``indent``, ``wordwrap`` or ``tojson(indent=n)`` allocate
gigabytes in a single step, and a loop over a long string runs no code a Python-level budget
could count. Capping the arguments of every such call would be a list that is never complete;
a process boundary holds whatever the template does:

* the child limits its own address space (``RLIMIT_AS``: its size at start plus the memory
  bound), so an oversized allocation fails with ``MemoryError`` inside the child;
* the parent kills the child at the deadline, and also when its resident size passes the bound
  (macOS does not enforce ``RLIMIT_AS``, so there the watch is what holds);
* ``RLIMIT_CPU`` ends a child whose parent died mid-render.

Children fork from multiprocessing's fork server, which is started once, single-threaded, with
the renderer already imported: a render costs one fork (about 10 ms) instead of a new
interpreter, and never forks the app's own threads.
"""

from __future__ import annotations

import math
import multiprocessing
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import psutil

from app.core.errors import AppError, TemplateError

_STARTUP_GUARD_S = 30.0  # a hang guard for starting the child, not part of the render budget
_WATCH_INTERVAL_S = 0.02
# "__main__" is multiprocessing's default: imported once in the server, not again in each child.
_PRELOAD = ["__main__", "app.core.engine.chat_template"]


@dataclass(frozen=True)
class RenderLimits:
    deadline_s: float = 2.0
    memory_bytes: int = 64 * 2**20


def run_limited(target: Callable[..., str], args: tuple[Any, ...], limits: RenderLimits) -> str:
    """``target(*args)`` in a child held to ``limits``; every failure is a ``TemplateError``.

    ``target`` must be a module-level function (the child imports it by name) and should raise
    ``TemplateError`` for failures it recognises; its message is passed on as is.
    """
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_main,
        args=(sender, limits, target, args),
        name="chat-template",
        daemon=True,
    )
    try:
        child.start()
    except OSError as exc:
        raise TemplateError(f"could not start the chat template renderer: {exc}") from exc
    finally:
        sender.close()
    try:
        return _await_result(receiver, child, limits)
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join(_STARTUP_GUARD_S)


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")  # Linux and macOS, the platforms we ship
    # Takes effect when the fork server first starts; later calls change nothing.
    context.set_forkserver_preload(_PRELOAD)
    return context


def _await_result(receiver: Connection, child: Any, limits: RenderLimits) -> str:
    try:
        if not receiver.poll(_STARTUP_GUARD_S):
            raise TemplateError("the chat template renderer did not start")
        _, start_rss = receiver.recv()
        watched = _watch(child.pid)
        deadline = time.monotonic() + limits.deadline_s
        while not receiver.poll(min(_WATCH_INTERVAL_S, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline:
                raise TemplateError(
                    f"the model's chat template was stopped: it took longer than "
                    f"{limits.deadline_s:g} s to render"
                )
            if _rss(watched) > start_rss + limits.memory_bytes:
                raise _too_big(limits)
        kind, value = receiver.recv()
    except (EOFError, OSError) as exc:
        # The child died without answering: killed by the OS (CPU limit, out of memory).
        child.join(1.0)
        raise TemplateError(
            f"the model's chat template renderer stopped (exit code {child.exitcode})"
        ) from exc
    if kind == "memory":
        raise _too_big(limits)
    if kind == "error":
        raise TemplateError(value)
    return str(value)


def _too_big(limits: RenderLimits) -> TemplateError:
    return TemplateError(
        f"the model's chat template was stopped: it needed more than "
        f"{limits.memory_bytes // 2**20} MiB to render"
    )


def _watch(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None  # already finished: its answer is in the pipe


def _rss(process: psutil.Process | None) -> int:
    try:
        return int(process.memory_info().rss) if process is not None else 0
    except psutil.Error:
        return 0  # already gone: the poll on the pipe reports why


# -- child ----------------------------------------------------------------------------------------


def _child_main(
    conn: Connection, limits: RenderLimits, target: Callable[..., str], args: tuple[Any, ...]
) -> None:
    me = psutil.Process()
    _limit_self(limits, int(me.memory_info().vms))
    conn.send(("ready", int(me.memory_info().rss)))
    try:
        result: tuple[str, str | None] = ("ok", target(*args))
    except MemoryError:
        result = ("memory", None)
    except AppError as exc:
        result = ("error", exc.user_message)
    except Exception as exc:  # noqa: BLE001 - the parent gets every failure as a message
        result = ("error", f"the model's chat template failed to render: {exc}")
    try:
        conn.send(result)
    except MemoryError:
        conn.send(("memory", None))
    conn.close()


def _limit_self(limits: RenderLimits, address_space: int) -> None:
    cpu_s = math.ceil(limits.deadline_s) + 2
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    if sys.platform.startswith("linux"):
        cap = address_space + limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
