"""The Chat page: conversations, the transcript, the composer and the context meter.

Everything the user sends is committed to the chat history before the engine sees it; the reply
streams into the history (checkpointed) and into the transcript. Stop (Esc) cancels between
tokens and frees the engine at once.
"""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.chats.conversation import Conversation, Message
from app.core.chats.prompting import generation_request
from app.core.engine.result import GenerationResult
from app.core.pool.pool import PooledModel
from app.gui.chat.composer import Composer
from app.gui.chat.context_meter import ContextMeter
from app.gui.chat.conversation_list import ConversationList
from app.gui.chat.model_picker import ModelPicker
from app.gui.chat.reply_stream import ReplyStream
from app.gui.chat.settings_dialog import ChatSettingsDialog
from app.gui.chat.transcript import TranscriptView
from app.gui.desktop import Desktop
from app.gui.errors import show_error, user_message
from app.gui.icons import icon
from app.gui.model_loader import LoadedModel

COUNT_DELAY_MS = 400


class ChatPage(QWidget):
    reply_finished = Signal(object)  # Message
    context_counted = Signal(int)  # prompt tokens of the conversation plus the draft

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatPage")
        self._desktop = desktop
        self._store = desktop.services.chats
        self._conversation: Conversation | None = None
        self._messages: list[Message] = []
        self._stream: ReplyStream | None = None
        self._editing: int | None = None
        self._waiting_for_model = False
        self._count_serial = 0

        self.conversations = ConversationList(self._store)
        self.conversations.conversation_chosen.connect(self._on_conversations_conversation_chosen)
        self.conversations.conversation_deleted.connect(self._on_conversations_conversation_deleted)
        self.new_button = QPushButton("New chat")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        self.new_button.clicked.connect(self.new_conversation)

        self.title = QLabel()
        self.title.setObjectName("chatTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.title.setFont(font)
        # A long title gives way to the model picker (it is in full in the conversation list).
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.model_label = QLabel()
        self.model_label.setObjectName("chatModel")
        self.model_picker = ModelPicker(desktop)
        self.model_picker.model_chosen.connect(self._on_model_picker_model_chosen)
        self.settings_button = QToolButton()
        self.settings_button.setText("Settings")
        self.settings_button.setToolTip("System prompt and sampling for this conversation")
        self.settings_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.settings_button.clicked.connect(self._on_settings_button_clicked)

        self.notice = QLabel()
        self.notice.setObjectName("chatNotice")
        self.notice.setWordWrap(True)
        self.notice.hide()

        self.transcript = TranscriptView()
        self.transcript.edit_requested.connect(self._on_transcript_edit_requested)
        self.transcript.regenerate_requested.connect(self.regenerate)

        self.edit_banner = QWidget()
        banner = QHBoxLayout(self.edit_banner)
        banner.setContentsMargins(0, 0, 0, 0)
        banner.addWidget(QLabel("Editing a message: sending replaces it and the replies after it."))
        cancel_edit = QPushButton("Cancel edit")
        cancel_edit.clicked.connect(self._cancel_edit)
        banner.addStretch(1)
        banner.addWidget(cancel_edit)
        self.edit_banner.hide()

        self.composer = Composer()
        self.composer.submitted.connect(self.send)
        self.composer.escape_pressed.connect(self._on_escape_activated)
        self.composer.textChanged.connect(self._on_composer_text_changed)
        self.send_button = QPushButton("Send")
        self.send_button.setObjectName("sendButton")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._on_send_button_clicked)
        self.regenerate_button = QPushButton("Regenerate")
        self.regenerate_button.clicked.connect(self.regenerate)
        self.meter = ContextMeter()

        self._count_timer = QTimer(self)
        self._count_timer.setSingleShot(True)
        self._count_timer.setInterval(COUNT_DELAY_MS)
        self._count_timer.timeout.connect(self._count_context)

        stop = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        stop.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        stop.activated.connect(self._on_escape_activated)

        self._layout()
        self._restyle_icons()
        loader = desktop.loader
        loader.loading_started.connect(self._on_loader_loading_started)
        loader.model_loaded.connect(self._on_loader_model_loaded)
        loader.loading_failed.connect(self._on_loader_loading_failed)
        desktop.pool_events.changed.connect(self._show_model_state)
        self._show_model_state()
        self._open_latest()

    def _layout(self) -> None:
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(8, 8, 0, 8)
        side_layout.addWidget(self.new_button)
        side_layout.addWidget(self.conversations, 1)

        header = QHBoxLayout()
        header.addWidget(self.title, 1)
        header.addWidget(self.model_label)
        header.addWidget(self.model_picker)
        header.addWidget(self.settings_button)

        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.regenerate_button)
        buttons.addStretch(1)
        compose = QHBoxLayout()
        compose.addWidget(self.composer, 1)
        compose.addLayout(buttons)

        main = QWidget()
        column = QVBoxLayout(main)
        column.setContentsMargins(12, 8, 12, 8)
        column.addLayout(header)
        column.addWidget(self.notice)
        column.addWidget(self.transcript, 1)
        column.addWidget(self.edit_banner)
        column.addLayout(compose)
        column.addWidget(self.meter)

        splitter = QSplitter()
        splitter.addWidget(side)
        splitter.addWidget(main)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([220, 760])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def _restyle_icons(self) -> None:
        color = self.palette().color(QPalette.ColorRole.ButtonText)
        self.new_button.setIcon(icon("new-chat", color))
        self.settings_button.setIcon(icon("settings", color))
        self.regenerate_button.setIcon(icon("regenerate", color))
        streaming = self._stream is not None
        self.send_button.setIcon(icon("stop" if streaming else "send", color))
        for button in (self.new_button, self.send_button, self.regenerate_button):
            button.setIconSize(QSize(16, 16))

    def restyle(self) -> None:
        """The OS switched between light and dark."""
        self._restyle_icons()
        self.transcript.restyle()

    # -- conversations -------------------------------------------------------------------------

    @property
    def conversation(self) -> Conversation | None:
        return self._conversation

    def new_conversation(self) -> None:
        if self._conversation is not None and not self._messages:
            self.composer.setFocus()  # already on an empty one
            return
        self._open(self._store.create_conversation())
        self.composer.setFocus()

    def open_conversation(self, conversation_id: int) -> None:
        self._open(self._store.conversation(conversation_id))

    def _open_latest(self) -> None:
        existing = self._store.conversations()
        if existing:
            self._open(existing[0])
        else:
            self._open(self._store.create_conversation())

    def _open(self, conversation: Conversation) -> None:
        self._cancel_edit()
        self._conversation = conversation
        self.title.setText(conversation.title)
        self.model_picker.show_choice(conversation.settings.model)
        self._show_model_state()
        self._reload_messages()
        self.conversations.refresh(conversation.id)
        if self._stream is not None and self._stream.conversation_id == conversation.id:
            self.transcript.begin_stream(self._stream.model)
            self.transcript.update_stream(self._stream.text)

    def _reload_messages(self) -> None:
        assert self._conversation is not None
        self._messages = self._store.messages(self._conversation.id)
        self.transcript.show_messages(self._messages)
        self._update_buttons()
        self._schedule_count(immediately=True)

    def _on_conversations_conversation_chosen(self, conversation_id: int) -> None:
        if self._conversation is None or conversation_id != self._conversation.id:
            self.open_conversation(conversation_id)

    def _on_conversations_conversation_deleted(self, conversation_id: int) -> None:
        if self._stream is not None and self._stream.conversation_id == conversation_id:
            self._stream.stop()
        if self._conversation is not None and self._conversation.id == conversation_id:
            self._conversation = None
            self._open_latest()
        else:
            self.conversations.refresh(self._conversation.id if self._conversation else None)

    def _on_settings_button_clicked(self) -> None:
        if self._conversation is None:
            return
        dialog = ChatSettingsDialog(self._conversation.settings, self)
        if dialog.exec():
            self._store.update_settings(self._conversation.id, dialog.settings())
            self._conversation = self._store.conversation(self._conversation.id)
            self._schedule_count(immediately=True)

    def _on_model_picker_model_chosen(self, name: str | None) -> None:
        if self._conversation is None:
            return
        settings = replace(self._conversation.settings, model=name)
        self._store.update_settings(self._conversation.id, settings)
        self._conversation = self._store.conversation(self._conversation.id)
        self._show_model_state()
        self._schedule_count(immediately=True)

    def _model_name(self) -> str | None:
        """The model this conversation talks to: its own choice, else the one loaded last."""
        if self._conversation is not None and self._conversation.settings.model:
            return self._conversation.settings.model
        loaded = self._desktop.loader.current
        return loaded.info.model_id if loaded is not None else None

    # -- sending -------------------------------------------------------------------------------

    @property
    def streaming(self) -> bool:
        return self._stream is not None

    def send(self) -> None:
        text = self.composer.toPlainText().strip()
        if not text or self._stream is not None or self._conversation is None:
            return
        conversation_id = self._conversation.id
        if self._editing is not None:
            self._store.edit_user_message(self._editing, text)
            self._cancel_edit()
        else:
            self._store.add_user_message(conversation_id, text)
        self.composer.clear()
        self._conversation = self._store.conversation(conversation_id)
        self.title.setText(self._conversation.title)
        self.conversations.refresh(conversation_id)
        self._reload_messages()
        self._reply()

    def regenerate(self) -> None:
        if self._stream is not None or not self._messages:
            return
        last = self._messages[-1]
        if last.role == "assistant":
            self._store.supersede_from(last.id)
            self._reload_messages()
        if self._messages and self._messages[-1].role == "user":
            self._reply()

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()

    def _reply(self) -> None:
        assert self._conversation is not None
        name = self._model_name()
        if name is None:
            self._waiting_for_model = self._desktop.loader.loading is not None
            if not self._waiting_for_model:
                self._show_notice(
                    "No model is loaded, so nobody can answer yet. Your message is saved: "
                    "load a model on the Library page, then press Regenerate."
                )
            return
        request = generation_request(self._conversation.settings, self._messages)
        services = self._desktop.services
        stream = ReplyStream(self._store, self._conversation.id, name, self)
        stream.text_changed.connect(self._on_stream_text_changed)
        stream.finished.connect(self._on_stream_finished)
        stream.failed.connect(self._on_stream_failed)
        self._stream = stream
        self.transcript.begin_stream(stream.model)
        self._update_buttons()

        def held(model: PooledModel) -> None:
            stream.finished.connect(lambda *_args: model.release())
            stream.start(model.engine, request)

        # The reply holds its model busy in the pool (never evicted mid-reply); a model that is
        # not loaded is loaded first, off the GUI thread, under the pool's memory rules, and a
        # refusal (memory, load on request off and no library model) ends the reply with it.
        # Owned by the page, not the stream: a granted hold is always taken (and released).
        self._desktop.bridge.run(lambda: services.hold_model(name), held, stream.fail, self)

    def _on_stream_text_changed(self, text: str) -> None:
        stream = self._stream
        if stream is not None and self._is_current(stream.conversation_id):
            self.transcript.update_stream(text)

    def _on_stream_finished(self, message: Message, result: GenerationResult | None) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.deleteLater()
        if self._is_current(message.conversation_id):
            self._reload_messages()
        self._update_buttons()
        if result is not None and self._desktop.loader.current is not None:
            used = result.prompt_tokens + result.completion_tokens
            self.meter.set_usage(used, self._desktop.loader.current.info.n_ctx)
        self.reply_finished.emit(message)

    def _on_stream_failed(self, exc: BaseException) -> None:
        self._show_notice(f"The reply failed: {user_message(exc)}")

    def _is_current(self, conversation_id: int) -> bool:
        return self._conversation is not None and self._conversation.id == conversation_id

    def _on_send_button_clicked(self) -> None:
        if self._stream is not None:
            self.stop()
        else:
            self.send()

    def _on_escape_activated(self) -> None:
        if self._stream is not None:
            self.stop()
        elif self._editing is not None:
            self._cancel_edit()

    def _update_buttons(self) -> None:
        streaming = self._stream is not None
        self.send_button.setText("Stop" if streaming else "Send")
        self.send_button.setToolTip("Stop the reply (Esc)" if streaming else "Send (Enter)")
        has_user = any(m.role == "user" for m in self._messages)
        self.regenerate_button.setEnabled(not streaming and has_user)
        self._restyle_icons()

    # -- edit and resend -----------------------------------------------------------------------

    def edit_message(self, message_id: int) -> None:
        if self._stream is not None:
            return
        message = next((m for m in self._messages if m.id == message_id), None)
        if message is None or message.role != "user":
            return
        self._editing = message_id
        self.composer.setPlainText(message.content)
        self.edit_banner.show()
        self.composer.setFocus()

    def _on_transcript_edit_requested(self, message_id: int) -> None:
        self.edit_message(message_id)

    def _cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.composer.clear()
        self.edit_banner.hide()

    # -- model and context ---------------------------------------------------------------------

    def _on_loader_loading_started(self, name: str) -> None:
        self.model_label.setText(f"loading {name}…")

    def _on_loader_model_loaded(self, loaded: LoadedModel) -> None:
        self._show_model_state()
        self._schedule_count(immediately=True)
        if self._waiting_for_model:
            self._waiting_for_model = False
            if self._messages and self._messages[-1].role == "user":
                self._reply()

    def _on_loader_loading_failed(self, exc: BaseException) -> None:
        self._waiting_for_model = False
        self._show_model_state()
        self._show_notice(f"The model could not be loaded: {user_message(exc)}")

    def _show_model_state(self) -> None:
        loader = self._desktop.loader
        chosen = self._conversation.settings.model if self._conversation is not None else None
        if chosen:
            model = self._desktop.services.pool.find(chosen)
            self.model_label.setText(
                f"{model.info.n_ctx:,} tokens of context"
                if model is not None
                else "loads when you send"
            )
            self.notice.hide()
        elif loader.current is not None:
            info = loader.current.info
            self.model_label.setText(f"{info.model_id} · {info.n_ctx:,} tokens of context")
            self.notice.hide()
        elif loader.loading is not None:
            self.model_label.setText(f"loading {loader.loading}…")
        else:
            self.model_label.setText("no model loaded")
            self.meter.set_unknown("no model loaded")

    def _show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()

    def _on_composer_text_changed(self) -> None:
        self._schedule_count()

    def _schedule_count(self, immediately: bool = False) -> None:
        if immediately:
            self._count_timer.stop()
            self._count_context()
        else:
            self._count_timer.start()

    def _count_context(self) -> None:
        name = self._model_name()
        if name is None or self._conversation is None:
            return
        if self._stream is not None:
            return  # counted from the result when the reply ends
        model = self._desktop.services.pool.find(name)
        if model is None:
            self.meter.set_unknown("counted once the model is loaded")
            return
        self._count_serial += 1
        serial = self._count_serial
        n_ctx = model.info.n_ctx
        draft = self.composer.toPlainText().strip() or None
        request = generation_request(self._conversation.settings, self._messages, draft)
        try:
            future = model.engine.count_tokens(request)
        except Exception as exc:  # noqa: BLE001 - the engine has shut down: nothing to count
            self.meter.set_unknown(user_message(exc))
            return

        def counted(tokens: int) -> None:
            if serial == self._count_serial:
                self.meter.set_usage(tokens, n_ctx)
                self.context_counted.emit(tokens)

        def failed(exc: BaseException) -> None:
            if serial == self._count_serial:
                self.meter.set_unknown(user_message(exc))

        self._desktop.bridge.watch(future, counted, failed, owner=self)

    # -- shutdown ------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop a streaming reply; the history keeps what was written (marked stopped)."""
        if self._stream is not None:
            self._stream.stop()

    def show_error(self, exc: BaseException) -> None:
        show_error(self, exc)
