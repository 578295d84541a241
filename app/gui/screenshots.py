"""Screenshots of every page, as a user sees them: ``python -m app.gui.screenshots OUT_DIR``.

Runs the real app (set ``HOMEFIRE_HOME`` to an empty folder, and run it under Xvfb for real
fonts): loads the starter model, chats with it, starts the endpoint and sends it one request,
then grabs each page to ``OUT_DIR/<page>.png`` at 2× device pixels when the screen is HiDPI.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication

from app.core.chats.conversation import ChatSettings
from app.core.library.starter import STARTER_NAME
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow
from app.gui.theme import Theme

PROMPT = "What is the capital of France?"


def wait_until(app: QApplication, done: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not get there in time")
        loop = QEventLoop()
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    app.processEvents()


def main(out_dir: str) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    app.setApplicationName("Homefire")
    theme = Theme(app)
    desktop = Desktop.create(AppServices.create())
    window = MainWindow(desktop)
    theme.changed.connect(window.restyle)
    window.resize(1280, 820)
    window.show()
    try:
        models = {m.name: m for m in desktop.services.library.models()}
        starter = models[STARTER_NAME]
        desktop.loader.load(starter, LoadOptions(starter.path, n_ctx=4096))
        wait_until(app, lambda: desktop.loader.current is not None)

        chat = window.chat
        assert chat.conversation is not None
        desktop.chats.update_settings(
            chat.conversation.id, ChatSettings(temperature=0.0, seed=1, max_tokens=60)
        )
        chat.open_conversation(chat.conversation.id)
        chat.composer.setPlainText(PROMPT)
        chat.send()
        wait_until(app, lambda: not chat.streaming)

        server = window.server
        server.port.setValue(0)
        server.start()
        wait_until(app, lambda: desktop.services.server is not None)
        runner = desktop.services.server
        assert runner is not None
        httpx.post(
            f"{runner.url}/v1/chat/completions",
            json={"model": STARTER_NAME, "max_tokens": 16,
                  "messages": [{"role": "user", "content": "Say hello."}]},
            headers={"User-Agent": "Continue/1.0"},
            timeout=60,
        )  # fmt: skip
        wait_until(app, lambda: server.log.rowCount() > 0)

        for key in ("chat", "discover", "downloads", "library", "server", "usage", "hardware"):
            window.show_page(key)
            wait_until(app, lambda: True)
            settle = QEventLoop()
            QTimer.singleShot(1500, settle.quit)  # background scans and detection finish
            settle.exec()
            window.grab().save(str(out / f"{key}.png"))
            print(out / f"{key}.png")  # noqa: T201
    finally:
        window.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "screenshots"))
