"""The one place errors meet the user: a friendly dialog, never a traceback.

``AppError`` carries a message written for the user; anything else is a bug, logged with its
traceback and shown as a short apology pointing at the log. ``Cancelled`` is silent.
"""

from __future__ import annotations

import logging
from types import TracebackType

from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.errors import AppError, Cancelled

log = logging.getLogger(__name__)


def user_message(exc: BaseException) -> str:
    if isinstance(exc, AppError):
        text = exc.user_message
        return text[:1].upper() + text[1:]
    return (
        "Something went wrong inside Homefire. The details are in the log file; "
        f"please report it. ({type(exc).__name__})"
    )


def show_error(parent: QWidget | None, exc: BaseException, title: str = "Homefire") -> None:
    if isinstance(exc, Cancelled):
        return
    if not isinstance(exc, AppError):
        log.error("unexpected error", exc_info=exc)
    box = QMessageBox(QMessageBox.Icon.Warning, title, user_message(exc), parent=parent)
    box.setObjectName("errorDialog")
    box.open()


def excepthook_for(log_path: str) -> object:
    """A ``sys.excepthook`` that logs the traceback and shows a friendly dialog instead."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.critical("uncaught exception", exc_info=(kind, exc, tb))
        if isinstance(exc, KeyboardInterrupt):
            return
        box = QMessageBox(
            QMessageBox.Icon.Critical,
            "Homefire",
            user_message(exc)
            if isinstance(exc, AppError)
            else (
                "Something went wrong inside Homefire. Your chats are saved. "
                f"The details are in {log_path}; please include them in a report."
            ),
        )
        box.setObjectName("errorDialog")
        box.open()

    return hook
