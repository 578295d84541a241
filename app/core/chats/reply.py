"""A streaming reply, written to the chat history as it grows: at most ~1 s of text at risk.

``append`` is called for every chunk on the engine thread; it writes a checkpoint when the last
one is older than the interval, so a kill loses at most that much text and a fast stream costs
one small transaction a second, not one per token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from app.core.chats.conversation import Message, MessageStatus, ReplyStats
from app.core.chats.store import ChatStore
from app.core.engine.result import GenerationResult

CHECKPOINT_INTERVAL_S = 1.0


class ReplyWriter:
    def __init__(
        self,
        store: ChatStore,
        message: Message,
        *,
        interval_s: float = CHECKPOINT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.message = message
        self._interval = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._last_write = clock()
        self._checkpointed_chars = 0
        self._finished = False

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._parts)

    @property
    def checkpointed_chars(self) -> int:
        """How much of the reply is safely on disk."""
        with self._lock:
            return self._checkpointed_chars

    def append(self, chunk: str) -> None:
        with self._lock:
            if self._finished:
                return
            self._parts.append(chunk)
            now = self._clock()
            if now - self._last_write < self._interval:
                return
            text = "".join(self._parts)
            self._store.checkpoint_reply(self.message.id, text)
            self._last_write = now
            self._checkpointed_chars = len(text)

    def finish(
        self, status: MessageStatus, stats: ReplyStats | None = None, error: str | None = None
    ) -> Message:
        with self._lock:
            self._finished = True
            text = "".join(self._parts)
        self.message = self._store.finish_reply(self.message.id, text, status, stats, error)
        return self.message

    def finish_with(self, result: GenerationResult) -> Message:
        """Close the reply with what the engine measured (Stop gives ``cancelled``)."""
        status: MessageStatus = "cancelled" if result.finish_reason == "cancelled" else "complete"
        return self.finish(status, stats_from(result))


def stats_from(result: GenerationResult) -> ReplyStats:
    return ReplyStats(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        time_to_first_token_s=result.time_to_first_token_s,
        tokens_per_s=result.decode_tokens_per_s,
        finish_reason=result.finish_reason,
    )
