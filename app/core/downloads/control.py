"""Cancel and pause for one download, set from any thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

from app.core.errors import Cancelled


class Paused(Exception):
    """The user paused the download; the ``.part`` file stays for a later resume."""


class TransferControl:
    """Checked by the download thread between chunks; a blocked read is interrupted.

    A stalled server can leave the download thread waiting in a socket read for the whole stall
    timeout (30 s); :meth:`interrupting` registers how to unblock that read, so a cancel or
    pause takes effect at once rather than when the timeout fires.
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._pause = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._interrupt: Callable[[], None] | None = None

    def cancel(self) -> None:
        self._cancel.set()
        self._wake.set()
        self._fire_interrupt()

    def pause(self) -> None:
        self._pause.set()
        self._wake.set()
        self._fire_interrupt()

    def clear_pause(self) -> None:
        self._pause.clear()
        self._wake.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("download cancelled")
        if self._pause.is_set():
            raise Paused()

    def sleep(self, seconds: float) -> None:
        """Back-off that a cancel or pause cuts short."""
        self._wake.wait(seconds)
        self.check()

    @contextlib.contextmanager
    def interrupting(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While inside, a cancel or pause also calls ``interrupt`` (once, from its thread)."""
        with self._lock:
            self._interrupt = interrupt
        try:
            if self._cancel.is_set() or self._pause.is_set():
                self._fire_interrupt()  # set before we registered: nobody else will call it
            yield
        finally:
            with self._lock:
                self._interrupt = None

    def _fire_interrupt(self) -> None:
        # Under the lock, so the download thread cannot release the connection meanwhile.
        with self._lock:
            interrupt, self._interrupt = self._interrupt, None
            if interrupt is not None:
                interrupt()
