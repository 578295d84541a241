"""How long an idle model stays loaded: Ollama's ``keep_alive`` values, and the one timer thread
that unloads models whose time is up.

Ollama accepts a number of seconds or a Go duration ("5m", "1h30m", "300ms"); ``0`` unloads as
soon as the request ends and a negative value keeps the model loaded until it is unloaded.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

# Ollama's default idle time before a model is unloaded.
DEFAULT_KEEP_ALIVE_S = 300.0
# A negative keep-alive: never unloaded for being idle (memory pressure and Unload still do).
KEEP_FOREVER = -1.0
# Longer than any machine stays up: treated as forever, and keeps timer arithmetic finite.
_MAX_SECONDS = 10 * 365 * 86_400.0

_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_keep_alive(value: object) -> float | None:
    """Seconds from a keep-alive value (None when none was given); negative means forever.

    Raises ``ValueError`` with the reason for anything else, so each edge can word its error.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("keep_alive must be a duration such as '5m' or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError("keep_alive must be a duration such as '5m' or a number of seconds")
    if math.isnan(seconds):
        raise ValueError("keep_alive must be a number")
    if seconds < 0:
        return KEEP_FOREVER
    return min(seconds, _MAX_SECONDS)


def _parse_text(text: str) -> float:
    try:
        return float(text)  # a bare number is seconds, as Ollama reads it
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if not body or len(body) > 64:
        raise ValueError(f"keep_alive {text[:64]!r} is not a duration such as '5m' or '1h'")
    total, at = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != at:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        at = match.end()
    if at != len(body):
        raise ValueError(f"keep_alive {text!r} is not a duration such as '5m' or '1h'")
    return sign * total


def describe_keep_alive(seconds: float) -> str:
    """When an idle model unloads, as the end of "a model unloads ..."."""
    if seconds < 0:
        return "only when unloaded or when memory is needed"
    if seconds == 0:
        return "as soon as its last request ends"
    return f"after {seconds:g} s idle"


class ExpiryTimer:
    """One thread that sleeps until the earliest deadline it was given, then calls ``expire``.

    No polling: ``reschedule`` wakes the thread when a deadline changes; between deadlines it
    waits on a condition.
    """

    def __init__(
        self, expire: Callable[[], float | None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        # ``expire`` unloads what is due and returns the next deadline (None: nothing pending).
        self._expire = expire
        self._clock = clock
        self._changed = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="model-pool-expiry", daemon=True)
        self._thread.start()

    def reschedule(self, deadline: float | None) -> None:
        """Wake at ``deadline`` (monotonic seconds) if that is sooner than the current one."""
        with self._changed:
            if deadline is not None and (self._deadline is None or deadline < self._deadline):
                self._deadline = deadline
                self._changed.notify()

    def close(self, timeout_s: float = 5.0) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._closed:
                    if self._deadline is not None and self._clock() >= self._deadline:
                        break
                    wait = None if self._deadline is None else self._deadline - self._clock()
                    self._changed.wait(wait)
                if self._closed:
                    return
                self._deadline = None
            try:
                following = self._expire()
            except Exception:  # a failed unload must not stop every later one
                log.exception("unloading idle models failed")
                following = None
            self.reschedule(following)
