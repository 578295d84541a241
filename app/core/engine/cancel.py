"""Cooperative cancellation shared by the Stop button, an HTTP disconnect and quitting."""

from __future__ import annotations

import threading


class CancelToken:
    """Set from any thread; the engine checks it between tokens (and during long prompt reads)."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()
