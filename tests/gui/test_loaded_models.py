"""The app over the model pool: the Library page lists loaded models with measured memory, a pin
and Unload; the status bar shows them and their memory; the Server page's switch is the
load-on-request setting. Real core services, a real tiny model."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QPushButton
from pytestqt.qtbot import QtBot

from app.core.storage.paths import AppPaths
from app.core.storage.settings import SettingsStore
from app.gui.main_window import MainWindow
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
