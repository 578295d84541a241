"""The shell: last page, window size and last model come back; settings live under HOMEFIRE_HOME."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.core.library.last_model import LastModelStore
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.core.storage.paths import AppPaths
from app.core.storage.settings import SettingsStore
from app.gui.about import AboutDialog, versions
from app.gui.desktop import Desktop
from app.gui.main import load_first_model
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


def test_the_model_loaded_last_loads_again_at_the_next_start_with_its_settings(
    qtbot: QtBot, tiny_model: Path, homefire_home: Path
) -> None:
    first = MainWindow(Desktop.create(AppServices.create()))
    qtbot.addWidget(first)
    model = first.desktop.services.library.resolve(str(tiny_model))
    with qtbot.waitSignal(first.desktop.loader.model_loaded, timeout=60_000):
        first.desktop.loader.load(model, LoadOptions(model.path, n_ctx=768))
    first.shutdown()
    # Garbage where older versions kept the last model must not matter any more.
    with (homefire_home / "config" / "desktop.ini").open("a") as ini:
        ini.write("\n[model]\nlast=tiny-chatml\nn_ctx=lots\nn_gpu_layers=\n")

    last = LastModelStore.at(AppPaths.from_env()).recall()
    assert last is not None
    assert (last.name, last.n_ctx) == ("tiny-chatml", 768)
    store = SettingsStore(AppPaths.from_env().settings_file)
    saved = store.load()
    saved.model_folders.append(str(tiny_model.parent))  # so the library finds it by name
    store.save(saved)

    again = MainWindow(Desktop.create(AppServices.create()))
    qtbot.addWidget(again)
    try:
        with qtbot.waitSignal(again.desktop.loader.model_loaded, timeout=60_000) as loaded:
            load_first_model(again.desktop)
        assert loaded.args[0].library_model.name == "tiny-chatml"
        assert loaded.args[0].info.n_ctx == 768
    finally:
        again.shutdown()
