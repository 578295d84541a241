"""``homefire`` with no command: the QApplication, the services, the main window.

Start-up order: logging to a file, the application and its theme, the core services, the window,
then (in the background) the first model so chat works at once, offline: the last model used,
else the starter model. Quitting closes everything in order and joins every thread.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from app import __version__
from app.core.errors import AppError
from app.core.library.last_model import LastModel
from app.core.library.model import LibraryModel
from app.core.library.starter import STARTER_NAME
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from app.core.storage.paths import AppPaths
from app.core.storage.privacy import PrivateLogFile, private_folder
from app.gui.desktop import Desktop
from app.gui.errors import excepthook_for, user_message
from app.gui.icons import icon
from app.gui.main_window import MainWindow
from app.gui.theme import Theme

log = logging.getLogger(__name__)
LOG_FILE = "homefire.log"


def run_desktop(args: argparse.Namespace) -> int:
    paths = AppPaths.from_env()
    log_path = _log_to_file(paths, debug=bool(getattr(args, "debug", False)))
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Homefire")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("homefire")
    app.setWindowIcon(icon("homefire"))
    theme = Theme(app)
    sys.excepthook = excepthook_for(str(log_path))  # type: ignore[assignment]
    try:
        services = AppServices.create(paths)
        services.open_stores()
    except AppError as exc:
        QMessageBox.critical(None, "Homefire cannot start", user_message(exc))
        return 1
    desktop = Desktop.create(services, app)
    window = MainWindow(desktop)
    theme.changed.connect(window.restyle)
    # The tray keeps the endpoint serving with the window closed, so quitting is explicit.
    app.setQuitOnLastWindowClosed(False)
    window.quit_requested.connect(app.quit)
    app.aboutToQuit.connect(window.shutdown)
    _quit_on_signals(app)
    window.show()
    load_first_model(desktop)
    return app.exec()


def _quit_on_signals(app: QApplication) -> None:
    """Ctrl+C or a polite kill quits cleanly: replies stopped and saved, threads joined.

    Python runs signal handlers only between bytecodes, so a timer wakes it while Qt waits.
    """
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda _n, _f: app.quit())
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(300)


def load_first_model(desktop: Desktop) -> None:
    """The model used last (with the same settings), else the starter model, in the background."""
    services = desktop.services
    n_ctx = services.settings.engine.n_ctx

    def find() -> tuple[LastModel | None, list[LibraryModel]]:
        return services.last_model.recall(), services.library.models()

    def chosen(found: tuple[LastModel | None, list[LibraryModel]]) -> None:
        last, listed = found
        models = {m.name: m for m in listed}
        model = models.get(last.name) if last else None
        if model is not None and last is not None:
            options = last.options(model.path)
        else:
            model = models.get(STARTER_NAME)
            if model is None:
                return
            options = LoadOptions(model.path, n_ctx=n_ctx)
        if desktop.loader.current is None:
            desktop.loader.load(model, options)

    # Reading files and scanning other tools' folders touch the disk: never on the GUI thread.
    desktop.bridge.run(find, chosen)


def _log_to_file(paths: AppPaths, debug: bool) -> str:
    private_folder(paths.log_dir)
    path = paths.log_dir / LOG_FILE
    handler = PrivateLogFile(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for existing in root.handlers:  # the console keeps showing warnings only
        if existing.level == logging.NOTSET:
            existing.setLevel(logging.DEBUG if debug else logging.WARNING)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    return str(path)
