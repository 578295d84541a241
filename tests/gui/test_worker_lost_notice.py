"""A model split onto a worker that dies: the app names the worker, and the Library page's
Loaded table lets the model go (a real ``homefire worker`` process, a real split load)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.core.engine.request import GenerationRequest, Sampling
from app.core.errors import WorkerLost
from app.core.load_options import LoadOptions
from app.gui.main_window import MainWindow
from tests.fixtures.rpc_workers import require_rpc, workers

TIMEOUT_MS = 120_000


def test_a_lost_worker_is_named_and_its_model_leaves_the_loaded_table(
    qtbot: QtBot, window: MainWindow, tiny_model: Path, tmp_path: Path
) -> None:
    require_rpc()
    services = window.desktop.services
    table = window.library.loaded_models.table
    model = services.library.resolve(str(tiny_model))
    with workers(tmp_path, 1) as (doomed,):
        options = LoadOptions(
            model.path, n_ctx=256, parallel=1, n_threads=1, workers=(doomed.address,)
        )
        loader = window.desktop.loader
        with qtbot.waitSignal(loader.model_loaded, timeout=TIMEOUT_MS):
            loader.load(model, options)  # as the Load dialog does
        qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=TIMEOUT_MS)
        doomed.kill()
        with services.pool.acquire(model.name).result(timeout=60) as held:
            request = GenerationRequest(prompt="Hello", max_tokens=4, sampling=Sampling(0.0))
            with pytest.raises(WorkerLost):
                held.engine.generate(request).result(timeout=TIMEOUT_MS / 1000)

        def notice() -> QMessageBox | None:
            return window.findChild(QMessageBox, "errorDialog")

        qtbot.waitUntil(lambda: notice() is not None, timeout=TIMEOUT_MS)
        box = notice()
        assert box is not None
        assert doomed.address in box.text()
        qtbot.waitUntil(lambda: table.rowCount() == 0, timeout=TIMEOUT_MS)
        assert services.pool.models() == []
        assert loader.current is None  # no page goes on showing it
        box.close()
