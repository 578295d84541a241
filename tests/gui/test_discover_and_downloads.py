"""Discover a model on the (loopback) Hub, download it with progress, find it in the Library."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.downloads.manager import DownloadRequest, DownloadState
from app.gui.main_window import MainWindow
from tests.fixtures.hub_server import (
    Fault,
    HubServer,
    ServedFile,
    ServedRepo,
    hub_server,
    tiny_gguf,
)

__all__ = ["hub_server"]

REPO = "acme/Tiny-GGUF"


@pytest.fixture(autouse=True)
def served(hub_server: HubServer) -> ServedRepo:
    # Autouse, so HF_ENDPOINT points at the loopback Hub before the window's services exist.
    model = tiny_gguf(payload_bytes=2 << 20, seed=3)
    return hub_server.add_repo(
        ServedRepo(REPO, [ServedFile("tiny-Q4_K_M.gguf", model)], downloads=42)
    )


def test_search_pick_download_and_find_it_in_the_library(qtbot: QtBot, window: MainWindow) -> None:
    discover = window.discover
    qtbot.waitUntil(lambda: discover._profile is not None, timeout=20_000)
    discover.search.setText("Tiny")
    qtbot.keyClick(discover.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "results on the Hub" in discover.search_state.text(), timeout=20_000)
    assert discover.models.item(0).text().startswith(REPO)

    with qtbot.waitSignal(discover.verdicts_shown, timeout=20_000):
        discover.models.setCurrentRow(0)
    assert discover.table.item(0, 1).text() == "Q4_K_M"
    assert discover.table.item(0, 3).text()  # the fit verdict, in words
    assert discover.download_button.text() == "Download Q4_K_M"

    downloads = window.downloads
    with qtbot.waitSignal(downloads.download_finished, timeout=30_000) as finished:
        qtbot.mouseClick(discover.download_button, Qt.MouseButton.LeftButton)
    assert finished.args[0].repo_id == REPO
    qtbot.waitUntil(lambda: downloads.table.item(0, 5).text() != "", timeout=5_000)
    bar = downloads.table.cellWidget(0, 1)
    assert bar.value() == 1000
    done, _, total = downloads.table.item(0, 2).text().partition(" of ")
    assert done == total

    library = window.library
    qtbot.waitUntil(
        lambda: any(m.source == "homefire" and m.owned for m in library._models), timeout=20_000
    )


def test_a_hub_that_refuses_is_explained_in_words(
    qtbot: QtBot, window: MainWindow, hub_server: HubServer
) -> None:
    hub_server.state.faults["api"].append(Fault.http_status(403))
    discover = window.discover
    discover.search.setText("anything")
    qtbot.keyClick(discover.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "Searching" not in discover.search_state.text(), timeout=30_000)
    message = discover.search_state.text()
    assert "results" not in message
    assert "Traceback" not in message
    assert message[:1].isupper()


def test_a_download_that_breaks_unexpectedly_shows_failed_without_pause_or_cancel(
    qtbot: QtBot, window: MainWindow
) -> None:
    desktop = window.desktop
    # A file where the cache wants its snapshots folder: an error no download step expects.
    repo_dir = desktop.services.downloads.models_dir / "models--acme--Tiny-GGUF"
    repo_dir.mkdir(parents=True)
    (repo_dir / "snapshots").write_text("not a folder")
    variant = next(v for v in desktop.services.hub.variants(REPO) if v.quant == "Q4_K_M")
    downloads = window.downloads
    with qtbot.waitSignal(downloads.download_failed, timeout=30_000):
        downloads.start(DownloadRequest(REPO, variant.files))
    assert downloads.items[0].progress().state == DownloadState.FAILED
    assert "download failed" in downloads.table.item(0, 5).text().lower()
    assert not downloads.pause_button.isEnabled()
    assert not downloads.cancel_button.isEnabled()
    assert not downloads.resume_button.isEnabled()
