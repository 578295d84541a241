"""One streaming reply: engine chunks to the chat history (checkpointed) and to the view.

The history is written on the engine thread (``ReplyWriter.append``), before each chunk is
relayed, so what the view shows is never ahead of what a crash would keep by more than the
checkpoint interval. The view is told at most every ``REDRAW_MS``, however fast tokens come.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from app.core.chats.conversation import Message
from app.core.chats.reply import ReplyWriter
from app.core.chats.store import ChatStore
from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.errors import AppError, Cancelled
from app.gui.bridge import GenerationRelay
from app.gui.errors import user_message

REDRAW_MS = 60


class ReplyStream(QObject):
    text_changed = Signal(str)
    finished = Signal(object, object)  # Message, GenerationResult | None
    failed = Signal(object)  # the error (never Cancelled)

    def __init__(self, store: ChatStore, conversation_id: int, model: str, parent: QObject):
        super().__init__(parent)
        self.conversation_id = conversation_id
        self.model = model
        self._store = store
        self._writer = ReplyWriter(store, store.begin_reply(conversation_id, model))
        self._relay = GenerationRelay(self)
        self._relay.chunk_received.connect(self._on_relay_chunk_received)
        self._relay.generation_finished.connect(self._on_relay_generation_finished)
        self._relay.generation_failed.connect(self._on_relay_generation_failed)
        self._parts: list[str] = []
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_MS)
        self._redraw.timeout.connect(self._on_redraw_timeout)
        self.done = False

    @property
    def message(self) -> Message:
        return self._writer.message

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def start(self, engine: Engine, request: GenerationRequest) -> None:
        try:
            self._relay.start(engine, request, on_chunk=self._writer.append)
        except AppError as exc:  # EngineBusy, shut down: reported like any other failure
            error = exc
            QTimer.singleShot(0, self, lambda: self._on_relay_generation_failed(error))

    def stop(self) -> None:
        self._relay.stop()

    def fail(self, exc: BaseException) -> None:
        """End the reply before it started (its model could not be held or loaded)."""
        self._on_relay_generation_failed(exc)

    def _on_relay_chunk_received(self, text: str) -> None:
        self._parts.append(text)
        if not self._redraw.isActive():
            self._redraw.start()

    def _on_redraw_timeout(self) -> None:
        if not self.done:
            self.text_changed.emit(self.text)

    def _on_relay_generation_finished(self, result: GenerationResult) -> None:
        self._end()
        self.finished.emit(self._writer.finish_with(result), result)

    def _on_relay_generation_failed(self, exc: BaseException) -> None:
        self._end()
        if isinstance(exc, Cancelled):
            self.finished.emit(self._writer.finish("cancelled"), None)
            return
        message = self._writer.finish("error", error=user_message(exc))
        self.failed.emit(exc)
        self.finished.emit(message, None)

    def _end(self) -> None:
        self.done = True
        self._redraw.stop()
