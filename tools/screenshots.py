"""The README's pictures of the main pages: ``make screenshots`` (``python -m tools.screenshots DIR``).

Drives the real app in a fresh, temporary ``HOMEFIRE_HOME``: loads the starter model and chats
with it, shows Discover's verdicts for this machine, opens the Load dialog on the Library page,
starts the endpoint and sends it one request, and shows Hardware. The Usage page's chart needs
history a fresh home does not have, so two weeks of generations are first written through the
real usage ledger (with its clock set back; the token counts are made up and say so nowhere
else). Each page is saved as ``DIR/<page>.png``, 1280×800 at the screen's pixel ratio.

Run it under Xvfb (``xvfb-run``) for the fonts and styles of a real desktop; the offscreen Qt
platform works too. A developer tool: it is not part of the installed package.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from PySide6.QtCore import QEventLoop, QPoint, QTimer
from PySide6.QtGui import QPainter, QPixmap
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from app.core.chats.conversation import ChatSettings
from app.core.library.starter import STARTER_NAME
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.core.storage.paths import AppPaths
from app.core.usage.ledger import UsageLedger
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow
from app.gui.theme import Theme

SIZE = (1280, 800)
# The starter model is a small base model: its replies are short and plain, shown as they come.
PROMPTS = ("Give me three tips for keeping a fireplace safe.", "Tell me a short story about a fox.")
DISCOVER_MODEL = "Qwen3 8B"  # a catalog model with several quants to judge
PAGES = ("chat", "discover", "library", "server", "usage", "hardware")
HISTORY_DAYS = 30


def wait_until(done: Callable[[], bool], timeout_s: float = 180.0, what: str = "") -> None:
    """Run Qt's event loop until ``done()``; the app's work arrives through queued signals."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the app did not get there in {timeout_s:.0f} s: {what}")
        pause(0.05)


def pause(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def seed_usage(paths: AppPaths, model: str) -> None:
    """Two weeks of chat and editor generations, recorded through the ledger's own API."""
    clock = [datetime.now(UTC)]
    ledger = UsageLedger(paths.database_file, now=lambda: clock[0])
    rng = random.Random(7)
    today = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0)
    try:
        for days_ago in range(HISTORY_DAYS, 0, -1):
            day = today - timedelta(days=days_ago)
            weekend = day.weekday() >= 5
            sessions = [("chat", None)] * rng.randint(2, 6) + (
                [] if weekend else [("api", "Continue")] * rng.randint(8, 30)
            )
            for n, (source, client) in enumerate(sessions):
                clock[0] = day + timedelta(minutes=17 * n)
                prompt = rng.randint(300, 2500)
                completion = rng.randint(80, 900)
                generation = ledger.start(
                    source=source, model=model, prompt_tokens=prompt, client=client
                )
                clock[0] += timedelta(seconds=completion / 55)
                ledger.finish(
                    generation,
                    finish_reason="stop",
                    completion_tokens=completion,
                    prompt_seconds=prompt / 900,
                    decode_seconds=completion / 55,
                )
    finally:
        ledger.close()


def show_catalog_model(window: MainWindow, name: str) -> None:
    """Pick a catalog model in Discover's list, as a click would, and wait for its verdicts."""
    discover = window.discover
    wait_until(lambda: discover.table.rowCount() > 0, what="Discover's first verdicts")
    shown: list[str] = []
    discover.verdicts_shown.connect(shown.append)
    rows = [
        r
        for r in range(discover.models.count())
        if discover.models.item(r).text().startswith(f"{name}  ")
    ]
    if not rows:
        raise LookupError(f"{name} is not in Discover's catalog")
    discover.models.setCurrentRow(rows[0])
    wait_until(lambda: bool(shown), what=f"the verdicts for {name}")


def grab(window: QWidget, dialog: QDialog | None = None) -> QPixmap:
    """The window as drawn; a dialog (its own top-level window) is painted where it sits."""
    picture = window.grab()
    if dialog is not None:
        offset = dialog.mapToGlobal(QPoint(0, 0)) - window.mapToGlobal(QPoint(0, 0))
        painter = QPainter(picture)
        painter.drawPixmap(offset, dialog.grab())
        painter.end()
    return picture


def save(picture: QPixmap, path: Path) -> None:
    # Quality 0 is zlib's strongest compression for PNG (lossless either way).
    if not picture.toImage().save(str(path), quality=0):
        raise OSError(f"could not write {path}")
    print(path)


def take(out: Path) -> None:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Homefire")
    theme = Theme(app)
    desktop = Desktop.create(AppServices.create())
    window = MainWindow(desktop)
    theme.changed.connect(window.restyle)
    window.resize(*SIZE)
    window.show()
    dialogs: list[QDialog] = []
    window.library.load_dialog_opened.connect(dialogs.append)
    try:
        models = {m.name: m for m in desktop.services.library.models()}
        starter = models[STARTER_NAME]
        desktop.loader.load(starter, LoadOptions(starter.path, n_ctx=4096))
        wait_until(lambda: desktop.loader.current is not None, what="the starter model loaded")

        chat = window.chat
        assert chat.conversation is not None
        desktop.services.chats.update_settings(
            chat.conversation.id, ChatSettings(temperature=0.7, seed=3, max_tokens=80)
        )
        chat.open_conversation(chat.conversation.id)
        for prompt in PROMPTS:
            chat.composer.setPlainText(prompt)
            chat.send()
            wait_until(lambda: not chat.streaming, what="the chat reply")

        server = window.server
        server.port.setValue(0)
        server.start()
        wait_until(lambda: desktop.services.server is not None, what="the endpoint started")
        runner = desktop.services.server
        assert runner is not None
        httpx.post(
            f"{runner.url}/v1/chat/completions",
            json={"model": STARTER_NAME, "max_tokens": 16,
                  "messages": [{"role": "user", "content": "Say hello."}]},
            headers={"User-Agent": "Continue/1.0"},
            timeout=120,
        )  # fmt: skip
        wait_until(lambda: server.log.rowCount() > 0, what="the request in the server log")

        for key in PAGES:
            window.show_page(key)
            if key == "discover":
                show_catalog_model(window, DISCOVER_MODEL)
            elif key == "library":
                wait_until(lambda: window.library.table.rowCount() > 0, what="the library")
                window.library.select(STARTER_NAME)
                window.library.open_load_dialog()
                wait_until(lambda: bool(dialogs), what="the Load dialog")
            elif key == "usage":
                wait_until(lambda: window.usage.models.rowCount() > 0, what="the usage report")
            pause(1.5)  # background scans, detection and repaints settle
            save(grab(window, dialogs[-1] if key == "library" else None), out / f"{key}.png")
            if key == "library":
                dialogs[-1].reject()
    finally:
        window.shutdown()


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="homefire-screenshots-") as home:
        os.environ["HOMEFIRE_HOME"] = home
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # Discover's catalog needs no network
        paths = AppPaths.from_env()
        paths.ensure()
        seed_usage(paths, STARTER_NAME)
        take(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
