"""The Chat page over the real engine (tiny GGUF): stream, stop, persist, edit, context meter."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.chats.conversation import ChatSettings
from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.gui.chat.chat_page import ChatPage
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow
from tests.gui.conftest import LoadModel

GREEDY = ChatSettings(temperature=0.0, seed=7, max_tokens=12)


def _greedy(page: ChatPage, settings: ChatSettings = GREEDY) -> None:
    assert page.conversation is not None
    page._store.update_settings(page.conversation.id, settings)
    page.open_conversation(page.conversation.id)


def _send(qtbot: QtBot, page: ChatPage, text: str, timeout_ms: int = 30_000) -> None:
    page.composer.setPlainText(text)
    with qtbot.waitSignal(page.reply_finished, timeout=timeout_ms):
        qtbot.keyClick(page.composer, Qt.Key.Key_Return)


class _HoldAfterFirstText:
    """An engine observer that holds the engine, once, after the reply's first visible text."""

    def __init__(self, page: ChatPage) -> None:
        self.release = threading.Event()
        self._page = page
        self._held = False

    def generation_started(self, *_args: object) -> None:
        pass

    def generation_progressed(self, _job_id: int, _completion_tokens: int) -> None:
        stream = self._page._stream
        if not self._held and stream is not None and stream._writer.text:
            self._held = True
            self.release.wait(30)

    def generation_finished(self, *_args: object) -> None:
        pass


def test_send_streams_the_reply_into_the_transcript(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    load_model(tiny_model)
    page = window.chat
    _greedy(page)
    page.composer.setPlainText("Hello")
    with qtbot.waitSignal(page.reply_finished, timeout=30_000) as finished:
        qtbot.mouseClick(page.send_button, Qt.MouseButton.LeftButton)
    reply = finished.args[0]
    assert reply.status == "complete"
    assert reply.stats is not None
    assert reply.stats.completion_tokens == 12
    text = page.transcript.toPlainText()
    assert text.index("You") < text.index("Hello") < text.index("tiny-chatml")
    assert "measured: 12 tokens" in text
    assert page.composer.toPlainText() == ""


def test_stop_cancels_the_reply_and_frees_the_engine(
    qtbot: QtBot,
    window: MainWindow,
    services: AppServices,
    load_model: LoadModel,
    tiny_model: Path,
) -> None:
    load_model(tiny_model)
    page = window.chat
    hold = _HoldAfterFirstText(page)
    services.pool.add_observer(hold)
    _greedy(page, ChatSettings(temperature=0.0, seed=7, max_tokens=400))
    page.composer.setPlainText("Hello")
    qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: page._stream is not None and page._stream.text != "")
    qtbot.waitUntil(lambda: page._stream.text in page.transcript.toPlainText())
    assert page.send_button.text() == "Stop"
    with qtbot.waitSignal(page.reply_finished, timeout=30_000) as finished:
        qtbot.keyClick(page.composer, Qt.Key.Key_Escape)
        hold.release.set()
    stopped = finished.args[0]
    assert stopped.status == "cancelled"
    assert stopped.stats is not None
    assert stopped.stats.completion_tokens < 400
    assert "stopped" in page.transcript.toPlainText()
    assert services.pool.default().engine.pending == 0
    assert page.send_button.text() == "Send"
    _greedy(page)
    _send(qtbot, page, "Hello again")  # the engine serves the next reply at once
    assert page._messages[-1].status == "complete"


def test_conversations_persist_across_a_restart_of_the_window(
    qtbot: QtBot, load_model: LoadModel, tiny_model: Path
) -> None:
    first = Desktop.create(AppServices.create())
    window = MainWindow(first)
    qtbot.addWidget(window)
    try:
        model = first.services.library.resolve(str(tiny_model))
        with qtbot.waitSignal(first.loader.model_loaded, timeout=60_000):
            first.loader.load(model, LoadOptions(model.path, n_ctx=512))
        _greedy(window.chat)
        _send(qtbot, window.chat, "Remember the llamas")
        window.chat.new_conversation()
        conversation_ids = window.chat.conversations.ids()
    finally:
        window.shutdown()
        window.close()

    second = Desktop.create(AppServices.create())
    again = MainWindow(second)
    qtbot.addWidget(again)
    try:
        assert again.chat.conversations.ids() == conversation_ids
        titles = [again.chat.conversations.item(i).text() for i in range(len(conversation_ids))]
        assert "Remember the llamas" in titles
        again.chat.open_conversation(conversation_ids[titles.index("Remember the llamas")])
        transcript = again.chat.transcript.toPlainText()
        assert "Remember the llamas" in transcript
        assert "measured: 12 tokens" in transcript
    finally:
        again.shutdown()


def test_edit_and_resend_replaces_the_message_and_its_reply(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    load_model(tiny_model)
    page = window.chat
    _greedy(page)
    _send(qtbot, page, "first question")
    user = page._messages[0]
    page.transcript.edit_requested.emit(user.id)  # the "Edit" link under the message
    assert page.composer.toPlainText() == "first question"
    assert page.edit_banner.isVisibleTo(page)
    page.composer.setPlainText("better question")
    with qtbot.waitSignal(page.reply_finished, timeout=30_000):
        qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    assert [m.role for m in page._messages] == ["user", "assistant"]
    assert page._messages[0].content == "better question"
    text = page.transcript.toPlainText()
    assert "better question" in text
    assert "first question" not in text
    assert not page.edit_banner.isVisibleTo(page)


def test_regenerate_replaces_the_last_reply(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    load_model(tiny_model)
    page = window.chat
    _greedy(page)
    _send(qtbot, page, "Hello")
    old = page._messages[-1]
    with qtbot.waitSignal(page.reply_finished, timeout=30_000):
        qtbot.mouseClick(page.regenerate_button, Qt.MouseButton.LeftButton)
    assert len(page._messages) == 2
    assert page._messages[-1].id != old.id
    assert page._store.message(old.id).content == old.content  # set aside, not deleted


def test_the_context_meter_counts_and_warns_before_the_context_is_full(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    load_model(tiny_model, 256)
    page = window.chat
    with qtbot.waitSignal(page.context_counted, timeout=10_000):
        page.composer.setPlainText("Hello")
    assert "/ 256 tokens" in page.meter.label.text()
    assert not page.meter.warning
    with qtbot.waitSignal(page.context_counted, timeout=10_000) as counted:
        page.composer.setPlainText("Hello world " * 100)
    assert counted.args[0] >= 0.8 * 256
    assert page.meter.warning
    assert "almost full" in page.meter.label.text() or "full" in page.meter.label.text()


def test_a_message_sent_with_no_model_is_kept_and_explained(
    qtbot: QtBot, window: MainWindow
) -> None:
    page = window.chat
    page.composer.setPlainText("anyone there?")
    qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    assert page.notice.isVisibleTo(page)
    assert "No model is loaded" in page.notice.text()
    assert [m.content for m in page._messages] == ["anyone there?"]
    assert "no model loaded" in page.meter.label.text()


def test_code_blocks_are_highlighted_and_copyable(qtbot: QtBot, window: MainWindow) -> None:
    page = window.chat
    assert page.conversation is not None
    store = page._store
    store.add_user_message(page.conversation.id, "show me")
    from app.core.chats.reply import ReplyWriter

    reply = ReplyWriter(store, store.begin_reply(page.conversation.id, "m"))
    reply.append("<think>plan it</think>Here:\n\n```python\nprint('hi')\n```\n")
    reply.finish("complete")
    page.open_conversation(page.conversation.id)
    text = page.transcript.toPlainText()
    assert "print('hi')" in text
    assert "Reasoning · 2 words" in text
    assert "plan it" not in text  # folded until clicked
    assert page.transcript.copy_target(0) == "print('hi')"


@pytest.mark.real_model
def test_the_starter_model_replies_in_the_chat_as_the_engine_does(
    qtbot: QtBot,
    window: MainWindow,
    services: AppServices,
    load_model: LoadModel,
    starter_model: Path,
) -> None:
    """The page's reply is the engine's greedy reply to the same question, token for token.

    What the model says depends on the CPU llama.cpp was built for, so the test compares two
    paths on this machine instead of expecting particular words.
    """
    load_model(starter_model, 1024)
    page = window.chat
    settings = ChatSettings(temperature=0.0, seed=1, max_tokens=24)
    _greedy(page, settings)
    question = "What is the capital of France? Answer in one word."
    _send(qtbot, page, question, timeout_ms=180_000)  # a hang guard on a busy machine
    reply = page._messages[-1]
    assert reply.status == "complete"
    assert reply.stats is not None
    assert reply.stats.finish_reason in ("stop", "length")
    assert 0 < reply.stats.completion_tokens <= 24
    direct = (
        services.pool.default()
        .engine.generate(
            GenerationRequest(
                messages=(ChatMessage("user", question),),
                max_tokens=24,
                sampling=Sampling(temperature=0.0, seed=1),
            )
        )
        .result(timeout=180)
    )
    assert direct.text == reply.content
    assert direct.completion_tokens == reply.stats.completion_tokens
    assert direct.finish_reason == reply.stats.finish_reason
