"""The Library page and the Load dialog over the real library, estimator and engine."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.catalog.load_plan import plan_load
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.library.model import LibraryModel
from app.core.storage.settings import Settings
from app.gui.library.load_dialog import LoadDialog
from app.gui.main_window import MainWindow
from tests.fixtures.gguf_writer import write_tiny_model


@pytest.fixture
def user_folder(tiny_model: Path, homefire_home: Path) -> Path:
    """A folder of the user's with the tiny GGUF, listed through the model_folders setting."""
    folder = homefire_home / "my-models"
    folder.mkdir()
    shutil.copy(tiny_model, folder / "tiny-chatml.gguf")
    from app.core.storage.paths import AppPaths
    from app.core.storage.settings import SettingsStore

    SettingsStore(AppPaths.from_env().settings_file).save(Settings(model_folders=[str(folder)]))
    return folder


def _open_dialog(qtbot: QtBot, window: MainWindow, name: str) -> LoadDialog:
    page = window.library
    qtbot.waitUntil(lambda: any(m.name == name for m in page._models), timeout=20_000)
    page.select(name)
    with qtbot.waitSignal(page.load_dialog_opened, timeout=30_000) as opened:
        page.open_load_dialog()
    dialog = opened.args[0]
    assert isinstance(dialog, LoadDialog)
    return dialog


def test_models_from_a_user_folder_are_listed(
    qtbot: QtBot, user_folder: Path, window: MainWindow
) -> None:
    page = window.library
    qtbot.waitUntil(lambda: page.table.rowCount() > 0, timeout=20_000)
    names = [page.table.item(r, 0).text() for r in range(page.table.rowCount())]
    assert "tiny-chatml" in names
    row = names.index("tiny-chatml")
    assert page.table.item(row, 3).text() == "Your folder"
    assert page.table.item(row, 4).text() == str(user_folder)
    page.select("tiny-chatml")
    assert not page.delete_button.isEnabled()  # not Homefire's to delete


def test_the_load_dialog_estimate_follows_the_choices_and_loads(
    qtbot: QtBot, user_folder: Path, window: MainWindow
) -> None:
    dialog = _open_dialog(qtbot, window, "tiny-chatml")
    assert dialog.current_estimate is not None
    before = dialog.current_estimate.ram_bytes
    with qtbot.waitSignal(dialog.estimate_changed) as changed:
        dialog.context.setValue(256)
    after = changed.args[0]
    assert after is not None
    assert after.ram_bytes < before  # a smaller context needs a smaller KV cache
    assert "RAM:" in dialog.estimate_label.text()
    assert "estimated" in dialog.estimate_label.text()
    assert "4 parallel: +" in dialog.estimate_label.text()

    dialog.kv_cache_type.setCurrentText("q8_0")  # a quantized KV cache needs flash attention
    assert dialog.flash.isChecked()
    dialog.flash.setChecked(False)
    assert dialog.kv_cache_type.currentText() == "f16"

    with qtbot.waitSignal(window.desktop.loader.model_loaded, timeout=60_000) as loaded:
        dialog.accept()
    assert loaded.args[0].info.n_ctx == 256
    text = window.library.loaded.text()
    assert "context 256 tokens" in text
    assert "measured" in text  # the RAM growth llama.cpp caused, or that it was not measured
    assert ", estimated " in text  # the dialog's estimate, beside it


def test_the_load_dialog_judges_a_choice_by_the_recommender_s_rule(
    qtbot: QtBot, tmp_path: Path
) -> None:
    # A 3M-token context without flash attention: the compute buffer fits this machine's RAM
    # but not its GPU. The dialog used to call every layer on the GPU a fit (RAM alone).
    n_ctx = 3_000_000
    (path,) = write_tiny_model(tmp_path / "long-F16.gguf", context_length=n_ctx)
    profile = next(p for p in builtin_profiles() if p.name == "RTX 4090 24GB + 64GB RAM")
    facts = plan_load(path, profile, n_ctx, correction=None)
    model = LibraryModel("long", path, path.stat().st_size, "file", owned=False)
    dialog = LoadDialog(model, facts)
    qtbot.addWidget(dialog)
    assert facts.verdict.kind == "cpu"
    assert dialog.gpu_layers.isEnabled()
    assert dialog.gpu_layers.value() == 0
    assert "CPU only" in dialog.estimate_label.text()

    with qtbot.waitSignal(dialog.estimate_changed):
        dialog.gpu_layers.setValue(dialog.gpu_layers.maximum())
    assert dialog.options().n_gpu_layers == -1  # every layer, the output layer too
    assert dialog.current_fit is not None
    assert not dialog.current_fit.fits
    text = dialog.estimate_label.text()
    assert "does not fit" in text
    assert "of GPU memory" in text
    assert dialog.load_button.isEnabled()  # the user may still try


def test_the_load_dialog_takes_workers_from_the_settings_and_refuses_a_malformed_one(
    qtbot: QtBot, tmp_path: Path
) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    profile = next(p for p in builtin_profiles() if p.name == "RTX 4090 24GB + 64GB RAM")
    facts = plan_load(path, profile, 512, correction=None)
    model = LibraryModel("tiny", path, path.stat().st_size, "file", owned=False)
    dialog = LoadDialog(model, facts, workers=["studio.local:50052"])
    qtbot.addWidget(dialog)
    assert dialog.options().workers == ("studio.local:50052",)

    with qtbot.waitSignal(dialog.estimate_changed):
        dialog.workers.setText("studio.local:50052, 10.0.0.7:6000 mini")
    assert dialog.options().workers == ("studio.local:50052", "10.0.0.7:6000", "mini:50052")
    assert dialog.load_button.isEnabled()

    with qtbot.waitSignal(dialog.estimate_changed):
        dialog.workers.setText("studio.local:99999")
    assert not dialog.load_button.isEnabled()
    assert "port" in dialog.estimate_label.text()

    with qtbot.waitSignal(dialog.estimate_changed):
        dialog.workers.setText("")
    assert dialog.options().workers == ()
    assert dialog.load_button.isEnabled()
