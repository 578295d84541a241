"""The Server page's "Share this machine": a real ``homefire worker`` child, on and off."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.core.cluster.worker import probe_worker
from app.gui.desktop import Desktop
from app.gui.server.share_machine import ALL_INTERFACES, ShareMachineBox
from tests.fixtures.rpc_workers import REPO, require_rpc

START_TIMEOUT_MS = 120_000


@pytest.fixture
def box(
    qtbot: QtBot, desktop: Desktop, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ShareMachineBox]:
    # The child imports this checkout's app, as the test process does.
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    made = ShareMachineBox(desktop)
    qtbot.addWidget(made)
    yield made
    made.shutdown()


def test_sharing_on_runs_a_worker_with_its_address_and_off_stops_it(
    qtbot: QtBot, desktop: Desktop, box: ShareMachineBox
) -> None:
    require_rpc()
    box.port.setValue(0)  # any free port
    box.share.setChecked(True)
    qtbot.waitUntil(lambda: "Sharing" in box.state.text(), timeout=START_TIMEOUT_MS)
    worker = desktop.services.shared_worker
    assert worker is not None
    assert worker.running
    assert str(worker.address) in box.state.text()
    assert worker.address.host == "127.0.0.1"
    assert probe_worker(worker.address).total_bytes > 0
    assert not box.port.isEnabled()  # fixed while it runs

    box.share.setChecked(False)
    qtbot.waitUntil(lambda: desktop.services.shared_worker is None, timeout=START_TIMEOUT_MS)
    qtbot.waitUntil(lambda: "Not shared" in box.state.text())
    assert not worker.running
    assert worker.exit_code == 0
    assert not box.share.isChecked()


def test_all_interfaces_asks_first_and_declining_starts_nothing(
    qtbot: QtBot, desktop: Desktop, box: ShareMachineBox
) -> None:
    box.interface.setCurrentIndex(box.interface.findData(ALL_INTERFACES))
    box.share.setChecked(True)
    qtbot.waitUntil(lambda: box.confirmation is not None and box.confirmation.isVisible())
    confirmation = box.confirmation
    assert confirmation is not None
    assert "no authentication" in confirmation.text()
    confirmation.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: box.confirmation is None)
    assert not box.share.isChecked()
    assert desktop.services.shared_worker is None
    assert "Not shared" in box.state.text()


def test_a_worker_that_ends_on_its_own_unticks_the_switch_and_says_so(
    qtbot: QtBot, desktop: Desktop, box: ShareMachineBox
) -> None:
    require_rpc()
    box.port.setValue(0)
    box.share.setChecked(True)
    qtbot.waitUntil(lambda: "Sharing" in box.state.text(), timeout=START_TIMEOUT_MS)
    worker = desktop.services.shared_worker
    assert worker is not None
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: "stopped on its own" in box.state.text(), timeout=START_TIMEOUT_MS)
    assert not box.share.isChecked()
    assert desktop.services.shared_worker is None
    assert box.port.isEnabled()


def test_a_worker_that_cannot_start_is_an_error_dialog_and_the_switch_goes_off(
    qtbot: QtBot, desktop: Desktop, box: ShareMachineBox
) -> None:
    require_rpc()
    with socket.create_server(("127.0.0.1", 0)) as taken:
        box.port.setValue(taken.getsockname()[1])  # another program listens there
        box.share.setChecked(True)

        def error() -> QMessageBox | None:
            return box.findChild(QMessageBox, "errorDialog")

        qtbot.waitUntil(lambda: error() is not None, timeout=START_TIMEOUT_MS)
    dialog = error()
    assert dialog is not None
    assert "could not listen" in dialog.text()
    assert not box.share.isChecked()
    assert desktop.services.shared_worker is None
    dialog.close()
