"""The app side of the model pool over real engines on GGUFs the tests write: the Library page's
loaded models (two rows, unload, a pin that survives an eviction), a load that cannot fit, the
status bar's total, and each conversation's model across a restart (loaded for its reply, even
with load on request off)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QMessageBox, QPushButton, QWidget
from pytestqt.qtbot import QtBot

from app.core.chats.conversation import ChatSettings
from app.core.errors import InsufficientMemory
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.core.sizes import format_size
from app.core.storage.paths import AppPaths
from app.core.storage.settings import EngineSettings, Settings, SettingsStore
from app.gui.chat.chat_page import ChatPage
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow
from tests.gui.conftest import LoadModel

PIN_COLUMN, UNLOAD_COLUMN = 4, 5
GREEDY = ChatSettings(temperature=0.0, seed=7, max_tokens=8)
# What a load measures moves with the process's history (tens of MiB) and the estimate with the
# machine's correction, so eviction is forced by the model count, which no measurement moves;
# the pool picks what to evict the same way for memory (least recently used idle, never pinned).
POOL_OF_TWO = EngineSettings(max_loaded_models=2)
# Smaller than any model's estimate: every load is refused before it starts.
TINY_BUDGET = EngineSettings(memory_budget_mb=1, memory_margin_mb=0)


def _save_settings(settings: Settings) -> None:
    SettingsStore(AppPaths.from_env().settings_file).save(settings)


@pytest.fixture
def two_tiny(tiny_model: Path, homefire_home: Path) -> list[Path]:
    """Two tiny models in a folder the library lists (model_folders)."""
    folder = homefire_home / "my-models"
    folder.mkdir()
    paths = [folder / "tiny-a.gguf", folder / "tiny-b.gguf"]
    for path in paths:
        shutil.copy(tiny_model, path)
    _save_settings(Settings(model_folders=[str(folder)]))
    return paths


@pytest.fixture
def three_tiny(tiny_model: Path, homefire_home: Path) -> list[Path]:
    folder = homefire_home / "my-models"
    folder.mkdir()
    paths = [folder / f"tiny-{n}.gguf" for n in "abc"]
    for path in paths:
        shutil.copy(tiny_model, path)
    _save_settings(Settings(model_folders=[str(folder)], engine=POOL_OF_TWO))
    return paths


def _load(qtbot: QtBot, desktop: Desktop, path: Path) -> None:
    """Load through the app's loader; a load that fails fails the test with its reason."""
    outcome: list[object] = []
    desktop.loader.model_loaded.connect(outcome.append)
    desktop.loader.loading_failed.connect(outcome.append)
    model = desktop.services.library.resolve(str(path))
    desktop.loader.load(model, LoadOptions(model.path, n_ctx=512))
    qtbot.waitUntil(lambda: bool(outcome), timeout=60_000)
    desktop.loader.model_loaded.disconnect(outcome.append)
    desktop.loader.loading_failed.disconnect(outcome.append)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]


def _loaded_names(window: MainWindow) -> list[str]:
    return [m.name for m in window.library.loaded_models.models]


def _cell(window: MainWindow, name: str, column: int) -> QWidget:
    row = _loaded_names(window).index(name)
    widget = window.library.loaded_models.table.cellWidget(row, column)
    assert widget is not None
    return widget


def _pin_box(window: MainWindow, name: str) -> QCheckBox:
    box = _cell(window, name, PIN_COLUMN)
    assert isinstance(box, QCheckBox)
    return box


def _unload_button(window: MainWindow, name: str) -> QPushButton:
    button = _cell(window, name, UNLOAD_COLUMN)
    assert isinstance(button, QPushButton)
    return button


def test_two_loaded_models_show_two_rows_and_unload_removes_one(
    qtbot: QtBot, two_tiny: list[Path], window: MainWindow, load_model: LoadModel
) -> None:
    for path in two_tiny:
        load_model(path)
    pool = window.desktop.services.pool
    panel = window.library.loaded_models
    qtbot.waitUntil(lambda: sorted(_loaded_names(window)) == ["tiny-a", "tiny-b"])
    assert panel.table.rowCount() == 2
    for row, model in enumerate(panel.models):
        memory = panel.table.item(row, 2).text()
        basis = "measured" if model.memory_measured else "estimated"
        assert memory == f"{format_size(model.memory_bytes)} ({basis})"
        assert panel.table.item(row, 3).text()  # its idle time

    models = pool.models()
    total = format_size(sum(m.memory_bytes for m in models))
    basis = "measured" if all(m.memory_measured for m in models) else "estimated"
    assert window.status.model.text() == f"2 models loaded · {total} ({basis})"

    qtbot.mouseClick(_unload_button(window, "tiny-a"), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _loaded_names(window) == ["tiny-b"], timeout=20_000)
    assert pool.find("tiny-a") is None
    assert [m.name for m in pool.models()] == ["tiny-b"]
    qtbot.waitUntil(lambda: window.status.model.text().startswith("tiny-b · ctx 512 · "))


def test_a_pinned_model_survives_an_eviction(
    qtbot: QtBot, three_tiny: list[Path], window: MainWindow
) -> None:
    pool = window.desktop.services.pool
    first, second, third = three_tiny
    _load(qtbot, window.desktop, first)
    qtbot.waitUntil(lambda: _loaded_names(window) == ["tiny-a"])
    _pin_box(window, "tiny-a").click()
    assert [m.pinned for m in pool.models()] == [True]

    _load(qtbot, window.desktop, second)  # tiny-a is now the least recently used
    _load(qtbot, window.desktop, third)  # no room for three: the idle unpinned one goes
    qtbot.waitUntil(lambda: sorted(_loaded_names(window)) == ["tiny-a", "tiny-c"])
    assert pool.find("tiny-b") is None
    qtbot.waitUntil(lambda: _pin_box(window, "tiny-a").isChecked())
    assert not _pin_box(window, "tiny-c").isChecked()

    _pin_box(window, "tiny-a").click()  # unpinned: the pool forgets the pin
    qtbot.waitUntil(lambda: not pool.find("tiny-a").pinned)


def test_a_model_that_cannot_fit_is_refused_with_what_it_needs(
    qtbot: QtBot, tiny_model: Path, homefire_home: Path
) -> None:
    _save_settings(Settings(engine=TINY_BUDGET))
    desktop = Desktop.create(AppServices.create())
    window = MainWindow(desktop)
    qtbot.addWidget(window)
    try:
        model = desktop.services.library.resolve(str(tiny_model))
        with qtbot.waitSignal(desktop.loader.loading_failed, timeout=60_000) as failed:
            desktop.loader.load(model, LoadOptions(model.path, n_ctx=512))
        error = failed.args[0]
        assert isinstance(error, InsufficientMemory)
        assert error.needed_bytes > error.available_bytes
        box = window.library.findChild(QMessageBox, "errorDialog")
        assert box is not None
        assert "tiny-chatml needs" in box.text().lower()
        assert "available" in box.text()
        assert desktop.services.pool.models() == []
        assert window.status.model.text() == "No model loaded"
    finally:
        window.shutdown()


def _pick(page: ChatPage, name: str) -> None:
    index = page.model_picker.findData(name)
    assert index >= 0
    page.model_picker.setCurrentIndex(index)
    page.model_picker.activated.emit(index)


def _picker_names(page: ChatPage) -> list[str | None]:
    return [page.model_picker.itemData(i) for i in range(page.model_picker.count())]


def test_each_conversation_keeps_its_model_and_is_answered_by_it(
    qtbot: QtBot, two_tiny: list[Path]
) -> None:
    first = Desktop.create(AppServices.create())
    window = MainWindow(first)
    qtbot.addWidget(window)
    try:
        model = first.services.library.resolve(str(two_tiny[0]))
        with qtbot.waitSignal(first.loader.model_loaded, timeout=60_000):
            first.loader.load(model, LoadOptions(model.path, n_ctx=512))
        page = window.chat
        # Loaded models first, then the library's other models (load on request is on).
        qtbot.waitUntil(lambda: _picker_names(page)[:2] == [None, "tiny-a"])
        assert "tiny-b" in _picker_names(page)[2:]
        assert page.conversation is not None
        conversation_id = page.conversation.id
        page._store.update_settings(conversation_id, GREEDY)
        _pick(page, "tiny-b")
        assert page._store.conversation(conversation_id).settings.model == "tiny-b"
    finally:
        window.shutdown()
        window.close()

    second = Desktop.create(AppServices.create())
    again = MainWindow(second)
    qtbot.addWidget(again)
    try:
        page = again.chat
        page.open_conversation(conversation_id)
        assert page.model_picker.currentData() == "tiny-b"
        assert second.services.pool.models() == []  # nothing loaded after the restart
        page.composer.setPlainText("Hello")
        with qtbot.waitSignal(page.reply_finished, timeout=60_000) as finished:
            qtbot.keyClick(page.composer, Qt.Key.Key_Return)
        reply = finished.args[0]
        assert reply.status == "complete"
        assert reply.model == "tiny-b"
        assert reply.stats is not None
        # Loaded through the pool for this reply, and the ledger counted it under that model.
        assert [m.name for m in second.services.pool.models()] == ["tiny-b"]
        by_model = second.services.ledger.by_model()
        assert list(by_model) == ["tiny-b"]
        assert by_model["tiny-b"].tokens.completion == reply.stats.completion_tokens
    finally:
        again.shutdown()


def test_a_conversation_s_own_model_loads_for_its_reply_with_load_on_request_off(
    qtbot: QtBot, two_tiny: list[Path], window: MainWindow, load_model: LoadModel
) -> None:
    load_model(two_tiny[0])
    window.server.load_on_request.click()  # off: requests name loaded models only
    page = window.chat
    assert page.conversation is not None
    page._store.update_settings(page.conversation.id, GREEDY)
    page.open_conversation(page.conversation.id)
    qtbot.waitUntil(lambda: "tiny-b" in _picker_names(page))
    _pick(page, "tiny-b")
    assert page.model_picker.currentData() == "tiny-b"
    page.composer.setPlainText("Hello")
    with qtbot.waitSignal(page.reply_finished, timeout=60_000) as finished:
        qtbot.keyClick(page.composer, Qt.Key.Key_Return)
    reply = finished.args[0]
    assert (reply.status, reply.model) == ("complete", "tiny-b")
    pool = window.desktop.services.pool
    assert sorted(m.name for m in pool.models()) == ["tiny-a", "tiny-b"]
