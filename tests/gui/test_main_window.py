"""The shell: last page and window size come back; the settings live under HOMEFIRE_HOME."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.core.services import AppServices
from app.gui.about import AboutDialog, versions
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow


def test_the_last_page_and_the_window_size_are_restored(qtbot: QtBot, homefire_home: Path) -> None:
    first = MainWindow(Desktop.create(AppServices.create()))
    qtbot.addWidget(first)
    first.resize(700, 500)
    first.show_page("server")
    first.shutdown()
    assert (homefire_home / "config" / "desktop.ini").is_file()

    again = MainWindow(Desktop.create(AppServices.create()))
    qtbot.addWidget(again)
    try:
        assert again.current_page == "server"
        assert (again.width(), again.height()) == (700, 500)
    finally:
        again.shutdown()


def test_the_about_box_names_versions_and_the_starter_model_terms(
    qtbot: QtBot, window: MainWindow
) -> None:
    about = AboutDialog(window.desktop, window)
    qtbot.addWidget(about)
    tabs = [about.tabs.tabText(i) for i in range(about.tabs.count())]
    assert tabs[:2] == ["About", "Licences"]
    assert "Gemma Terms (starter model)" in tabs
    names = [name for name, _version in versions()]
    assert {"Homefire", "Qt", "PySide6", "llama-cpp-python"} <= set(names)
