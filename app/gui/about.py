"""The About box: versions of every moving part, and the licences (the starter model's included)."""

from __future__ import annotations

import platform
from importlib import metadata
from importlib.resources import files
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app import __version__
from app.core.library.starter import STARTER_PACKAGE
from app.core.storage.resources import resources_dir
from app.gui.desktop import Desktop

_PACKAGES = ("llama-cpp-python", "huggingface-hub", "fastapi", "uvicorn", "pygments")


def versions() -> list[tuple[str, str]]:
    found = [
        ("Homefire", __version__),
        ("Python", platform.python_version()),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
    ]
    for name in _PACKAGES:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    return found


def starter_terms() -> str | None:
    """The Gemma Terms of Use the starter model package ships, as HTML (None if absent)."""
    try:
        path = Path(str(files(STARTER_PACKAGE).joinpath("data", "GEMMA_TERMS.html")))
        return path.read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        return None


class AboutDialog(QDialog):
    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About Homefire")
        self.resize(720, 560)
        tabs = QTabWidget()
        rows = "".join(f"<tr><td>{n}</td><td><b>{v}</b></td></tr>" for n, v in versions())
        paths = desktop.services.paths
        about = QLabel(
            "<h2>Homefire</h2><p>Run open-weight language models on your own machine: fit, "
            "download, chat, serve.</p>"
            f"<table cellspacing='6'>{rows}</table>"
            f"<p>Data: {paths.data_dir}<br>Settings: {paths.config_dir}<br>Logs: {paths.log_dir}</p>"
        )
        about.setWordWrap(True)
        about.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tabs.addTab(about, "About")
        notices = QTextBrowser()
        notices.setOpenExternalLinks(True)
        notices.setMarkdown(
            (resources_dir() / "licenses" / "THIRD_PARTY.md").read_text(encoding="utf-8")
        )
        tabs.addTab(notices, "Licences")
        terms = starter_terms()
        if terms is not None:
            gemma = QTextBrowser()
            gemma.setOpenExternalLinks(True)
            gemma.setHtml(terms)
            tabs.addTab(gemma, "Gemma Terms (starter model)")
        self.tabs = tabs
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(tabs)
        layout.addWidget(buttons)
