"""GUI fixtures: real core services under a temporary HOMEFIRE_HOME, the window, thread checks.

Every GUI test fails if it leaves a thread running: the window's shutdown must join the engine,
the download workers, the HTTP server and the background pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.library.model import LibraryModel
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.gui.desktop import Desktop
from app.gui.main_window import MainWindow
from app.gui.model_loader import LoadedModel

THREAD_GRACE_S = 10.0
# The loopback Hub's per-connection handler threads (socketserver) belong to the test's server,
# not the app: they live until the client's pooled keep-alive connection is dropped.
TEST_SERVER_THREADS = "process_request_thread"


def leaked_threads(before: set[threading.Thread], grace_s: float) -> list[threading.Thread]:
    """Threads started since ``before`` that are still alive after ``grace_s`` to finish."""
    leaked = []
    for thread in threading.enumerate():
        if thread in before or thread is threading.current_thread():
            continue
        if TEST_SERVER_THREADS in thread.name:
            continue
        thread.join(grace_s)
        if thread.is_alive():
            leaked.append(thread)
    return leaked


@pytest.fixture(autouse=True)
def no_thread_left_running() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = leaked_threads(before, THREAD_GRACE_S)
    if leaked:
        pytest.fail(f"the test left threads running: {sorted(t.name for t in leaked)}")


@pytest.fixture
def services() -> AppServices:
    return AppServices.create()


@pytest.fixture
def desktop(services: AppServices) -> Iterator[Desktop]:
    made = Desktop.create(services)
    yield made
    made.close()


@pytest.fixture
def window(qtbot: QtBot, desktop: Desktop) -> Iterator[MainWindow]:
    win = MainWindow(desktop)
    qtbot.addWidget(win)
    yield win
    win.shutdown()


LoadModel = Callable[[Path, int], LoadedModel]


@pytest.fixture
def load_model(qtbot: QtBot, desktop: Desktop) -> LoadModel:
    """Load a GGUF through the app's loader and wait until the pages have heard of it."""

    def load(path: Path, n_ctx: int = 512) -> LoadedModel:
        model = desktop.services.library.resolve(str(path))
        with qtbot.waitSignal(desktop.loader.model_loaded, timeout=60_000) as blocker:
            desktop.loader.load(model, LoadOptions(model.path, n_ctx=n_ctx))
        loaded = blocker.args[0]
        assert isinstance(loaded, LoadedModel)
        return loaded

    return load


def library_model(path: Path) -> LibraryModel:
    return LibraryModel(path.stem, path, path.stat().st_size, "file", owned=False)
