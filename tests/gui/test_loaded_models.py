"""The app over the model pool: the Library page lists loaded models with measured memory, a pin
and Unload; the status bar shows them and their memory; the Server page's switch is the
load-on-request setting; each conversation talks to the model it picked. Real core services,
real tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QPushButton
from pytestqt.qtbot import QtBot

from app.core.chats.conversation import Message
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings, SettingsStore
from app.gui.chat.chat_page import ChatPage
from app.gui.main_window import MainWindow
from tests.fixtures.tiny_llama import write_tiny_llama
from tests.gui.conftest import LoadModel


def test_the_library_page_shows_pins_and_unloads_loaded_models(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    panel = window.library.loaded_models
    assert panel.table.rowCount() == 0
    assert window.status.model.text() == "No model loaded"
    load_model(tiny_model)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1)
    item = panel.table.item(0, 0)
    assert item is not None
    assert item.text() == "tiny-chatml"
    memory = panel.table.item(0, 2)
    assert memory is not None
    assert "measured" in memory.text()
    assert "tiny-chatml" in window.status.model.text()
    assert "MiB" in window.status.model.text() or "KiB" in window.status.model.text()

    pool = window.desktop.services.pool
    pin = panel.table.cellWidget(0, 4)
    assert isinstance(pin, QCheckBox)
    pin.setChecked(True)
    assert [m.pinned for m in pool.models()] == [True]

    unload = panel.table.cellWidget(0, 5)
    assert isinstance(unload, QPushButton)
    unload.click()
    qtbot.waitUntil(lambda: not pool.models(), timeout=30_000)
    qtbot.waitUntil(lambda: panel.table.rowCount() == 0)
    qtbot.waitUntil(lambda: window.status.model.text() == "No model loaded")


def test_the_server_pages_switch_is_the_load_on_request_setting(
    qtbot: QtBot, window: MainWindow
) -> None:
    switch = window.server.load_on_request
    assert switch.isChecked()
    switch.setChecked(False)
    assert not window.desktop.services.pool.loads_on_request
    saved = SettingsStore(AppPaths.from_env().settings_file).load()
    assert saved.engine.load_on_request is False
    switch.setChecked(True)
    assert window.desktop.services.pool.loads_on_request


@pytest.fixture
def second_model(homefire_home: Path) -> str:
    """A second tiny model in a folder of the user's, so the library lists it."""
    folder = homefire_home / "my-models"
    folder.mkdir()
    write_tiny_llama(folder / "tiny-second.gguf", seed=5)
    SettingsStore(AppPaths.from_env().settings_file).save(Settings(model_folders=[str(folder)]))
    return "tiny-second"


def _send(qtbot: QtBot, page: ChatPage, text: str) -> Message:
    page.composer.setPlainText(text)
    with qtbot.waitSignal(page.reply_finished, timeout=60_000) as finished:
        qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    message = finished.args[0]
    assert isinstance(message, Message)
    return message


def test_each_conversation_talks_to_the_model_it_picked(
    second_model: str,  # first: the settings are written before the window reads them
    qtbot: QtBot,
    window: MainWindow,
    load_model: LoadModel,
    tiny_model: Path,
) -> None:
    load_model(tiny_model)
    page = window.chat
    picker = page.model_picker
    qtbot.waitUntil(lambda: picker.findData(second_model) > 0)
    assert picker.currentData() is None  # the model loaded last, until one is picked
    first = page.conversation
    assert first is not None

    picker.setCurrentIndex(picker.findData(second_model))
    picker.activated.emit(picker.currentIndex())
    reply = _send(qtbot, page, "Hello")
    assert reply.model == second_model  # loaded on request for this conversation
    pool = window.desktop.services.pool
    assert sorted(m.name for m in pool.models()) == sorted(["tiny-chatml", second_model])
    assert [m.busy for m in pool.models()] == [0, 0]  # the reply's hold ended with it

    page.new_conversation()
    assert picker.currentData() is None
    assert _send(qtbot, page, "Hello").model == "tiny-chatml"

    page.open_conversation(first.id)
    assert picker.currentData() == second_model  # kept with the conversation
    saved = window.desktop.services.chats.conversation(first.id)
    assert saved.settings.model == second_model
