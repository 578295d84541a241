"""The live request log behind the GUI's server page: the last N requests, in memory only.

Qt-free: ``subscribe`` callbacks run on the HTTP server's thread, so a GUI hands them to its
own thread (a queued signal) and never touches widgets from the callback.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)

Subscriber = Callable[["RequestRecord"], None]


@dataclass(frozen=True)
class RequestRecord:
    at: datetime  # when the request arrived (UTC)
    client: str  # the client's name from its User-Agent ("Continue", "ollama-python", ...)
    remote: str  # the peer address
    method: str
    path: str
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_s: float  # measured, arrival to the last byte sent
    status: int
    # The template of the route that handled it ("/v1/models/{model_id:path}"); "" when none
    # did (no route matched, or a guard answered first).
    route: str = ""
    time_to_first_token_s: float | None = None  # measured on the engine, for a generation
    decode_tokens_per_s: float | None = None  # measured after the first token


class RequestLog:
    def __init__(self, capacity: int = 500) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=capacity)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(record)
            except Exception:  # a broken view never breaks serving
                log.exception("request log subscriber failed")

    def records(self) -> list[RequestRecord]:
        """Oldest first."""
        with self._lock:
            return list(self._records)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` with every new record; returns the function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe
