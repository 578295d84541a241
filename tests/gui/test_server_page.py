"""The Server page starts and stops a real endpoint (port 0) and logs the requests it serves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton
from pytestqt.qtbot import QtBot

from app.core.server.config import API_KEY_ENV
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow
from app.gui.server.server_page import ServerPage
from tests.gui.conftest import LoadModel


def test_start_serve_log_and_stop(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    load_model(tiny_model)
    page = window.server
    page.port.setValue(0)  # any free port
    with qtbot.waitSignal(page.server_started, timeout=20_000) as started:
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    url = started.args[0]
    assert url.startswith("http://127.0.0.1:")
    assert "Serving" in page.state.text()
    assert "Serving" in window.status.server.text()
    assert f"apiBase: {url}/v1" in page.snippet_text("Continue")
    assert "model: tiny-chatml" in page.snippet_text("Continue")

    with qtbot.waitSignal(page._relay.request_logged, timeout=20_000):
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "tiny-chatml", "messages": [{"role": "user", "content": "Hi"}],
                  "max_tokens": 4},
            headers={"User-Agent": "aider/0.80"},
            timeout=20,
        )  # fmt: skip
    assert response.status_code == 200
    row = [page.log.item(0, c).text() for c in range(page.log.columnCount())]
    assert row[1] == "Aider"
    assert row[2] == "POST /v1/chat/completions"
    assert row[6] == "200"

    with qtbot.waitSignal(page.server_stopped, timeout=20_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert window.desktop.services.server is None
    assert window.status.server.text() == "Server off"
    try:
        httpx.get(f"{url}/health", timeout=2)
        refused = False
    except httpx.TransportError:
        refused = True
    assert refused


def test_lan_access_needs_an_api_key(qtbot: QtBot, window: MainWindow) -> None:
    page = window.server
    page.lan.setChecked(True)
    assert not page.start_button.isEnabled()
    qtbot.mouseClick(
        page.findChild(type(page.start_button), "startServer"), Qt.MouseButton.LeftButton
    )
    assert window.desktop.services.server is None
    page.api_key.setText("sekrit")
    assert page.start_button.isEnabled()
    assert page.config().host == "0.0.0.0"
    assert "export OPENAI_API_KEY=sekrit" in page.snippet_text("Aider")


def test_ollamas_port_is_offered_until_the_user_picks_one(qtbot: QtBot, desktop: Desktop) -> None:
    import socket

    from app.core.server.port import OLLAMA_PORT

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", OLLAMA_PORT))
        holder.listen()
    except OSError:
        pass  # something else holds 11434 already: the page must fall back all the same
    try:
        busy = ServerPage(desktop)
        qtbot.addWidget(busy)
        assert busy.port.value() == desktop.services.settings.server.port  # 8080, the default
        busy.shutdown()
    finally:
        holder.close()
    desktop.services.settings.server.port = 9000  # the user's choice wins over any offer
    chosen = ServerPage(desktop)
    qtbot.addWidget(chosen)
    assert chosen.port.value() == 9000
    chosen.shutdown()


def test_the_page_shows_busy_slots_and_waiting_requests(
    qtbot: QtBot, window: MainWindow, load_model: LoadModel, tiny_model: Path
) -> None:
    import threading

    from app.core.engine.request import GenerationRequest

    page = window.server
    assert "no model loaded" in page.slots.text()
    load_model(tiny_model)
    engine = window.desktop.services.pool.default().engine
    slots = engine.slot_usage.slots
    assert slots >= 2
    release = threading.Event()
    entered = threading.Event()

    def hold(_text: str) -> None:
        entered.set()
        release.wait(20)

    # The held stream keeps the engine thread in its callback: later requests wait in the queue.
    held = engine.generate(GenerationRequest(prompt="Hello", max_tokens=3), on_chunk=hold)
    assert entered.wait(20)
    waiting = [engine.generate(GenerationRequest(prompt="Hi", max_tokens=2)) for _ in range(2)]
    try:
        qtbot.waitUntil(
            lambda: f"1 of {slots} slots busy, 2 waiting" in page.slots.text(), timeout=5_000
        )
    finally:
        release.set()
    held.result(20)
    for future in waiting:
        future.result(20)
    qtbot.waitUntil(lambda: f"0 of {slots} slots busy" in page.slots.text(), timeout=5_000)


@pytest.fixture
def shared_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A keyring the app (this process) and ``homefire serve`` (a child) both read."""
    import keyring

    from tests.fixtures.file_keyring import BACKEND_NAME, FILE_ENV, SharedTestKeyring

    store = tmp_path / "keyring.json"
    monkeypatch.setenv(FILE_ENV, str(store))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", BACKEND_NAME)
    previous = keyring.get_keyring()
    keyring.set_keyring(SharedTestKeyring())
    yield store
    keyring.set_keyring(previous)


def test_serve_after_the_app_enabled_lan_requires_the_apps_key(
    qtbot: QtBot,
    shared_keyring: Path,
    window: MainWindow,
    homefire_home: Path,
    tiny_model: Path,
) -> None:
    page = window.server
    page.port.setValue(0)
    page.lan.setChecked(True)
    qtbot.mouseClick(page.findChild(QPushButton, "generateKey"), Qt.MouseButton.LeftButton)
    key = page.api_key.text()
    assert key
    with qtbot.waitSignal(page.server_started, timeout=20_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(page.server_stopped, timeout=20_000):
        qtbot.mouseClick(page.start_button, Qt.MouseButton.LeftButton)
    assert key in shared_keyring.read_text()  # saved where the OS keyring would keep it
    settings_text = (homefire_home / "config" / "settings.json").read_text()
    assert "0.0.0.0" in settings_text
    assert key not in settings_text

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    env.pop(API_KEY_ENV, None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "--debug",
            "serve",
            "--model",
            str(tiny_model),
            "--port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "Serving tiny-chatml" in line, process.stderr.read() if process.stderr else ""
        port = line.rsplit(":", 1)[1].split("/")[0]
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/v1/models").status_code == 401
        assert (
            httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer no"}).status_code == 401
        )
        authorised = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{url}/v1/models", headers=authorised).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Clients must send the API key (the key the app saved in the OS keyring)" in err
    assert key not in line + out + err  # not even with --debug logging
