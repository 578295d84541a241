"""The README's screenshot tool (tools/screenshots.py): its usage history and its dialog picture."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from PySide6.QtCore import QPoint
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QDialog, QWidget
from pytestqt.qtbot import QtBot

from app.core.storage.paths import AppPaths
from app.core.usage.ledger import ClientKey, UsageLedger
from tools.screenshots import HISTORY_DAYS, grab, seed_usage


def test_the_usage_history_is_read_back_by_the_ledger_day_by_day(tmp_path: Path) -> None:
    paths = AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path)})
    paths.ensure()
    seed_usage(paths, "starter")
    ledger = UsageLedger.open(paths)
    try:
        days = ledger.by_day(tz=UTC)
        clients = ledger.by_client()
        totals = ledger.totals()
    finally:
        ledger.close()
    assert len(days) == HISTORY_DAYS
    assert set(clients) == {ClientKey("chat", ""), ClientKey("api", "Continue")}
    assert totals.generations == sum(d.generations for d in days.values())
    assert totals.tokens.completion > 0


def test_a_dialog_is_painted_where_it_sits_on_the_window(qtbot: QtBot) -> None:
    window = QWidget()
    window.setStyleSheet("background: rgb(0, 0, 255);")
    window.resize(400, 300)
    qtbot.addWidget(window)
    window.show()
    dialog = QDialog(window)
    dialog.setStyleSheet("background: rgb(255, 0, 0);")
    dialog.resize(100, 80)
    dialog.show()
    dialog.move(window.mapToGlobal(QPoint(150, 100)))
    qtbot.waitExposed(dialog)
    picture = grab(window, dialog).toImage()
    scale = picture.devicePixelRatio()
    assert QColor(picture.pixel(int(10 * scale), int(10 * scale))) == QColor(0, 0, 255)
    assert QColor(picture.pixel(int(200 * scale), int(140 * scale))) == QColor(255, 0, 0)
    dialog.close()
