"""The models one HTTP request holds busy, released when its last byte has gone.

``served_model`` adds each hold as the pool grants it; the ``RequestLogger`` guard, which sees
the end of every request (a streamed body's too), releases them. A hold granted after its request
ended (the client left while the model loaded) is released at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from app.core.pool.pool import PooledModel

# Where the holds live in a request's ASGI scope state.
STATE_KEY = "model_holds"


class ModelHolds:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: list[PooledModel] = []
        self._closed = False

    def take(self, granted: Future[PooledModel]) -> None:
        """A done callback for the pool's Future (runs on whichever thread resolved it)."""
        if granted.cancelled() or granted.exception() is not None:
            return
        held = granted.result()
        with self._lock:
            if not self._closed:
                self._held.append(held)
                return
        held.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            held, self._held = self._held, []
        for model in held:
            model.release()
