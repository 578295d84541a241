"""The main window: a shell of navigation, pages and a status bar. Each page is its own widget."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSize, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QStackedWidget,
    QSystemTrayIcon,
    QWidget,
)

from app.core.downloads.manager import DownloadRequest
from app.core.errors import WorkerLost
from app.core.library.last_model import LastModel
from app.gui.about import AboutDialog
from app.gui.chat.chat_page import ChatPage
from app.gui.desktop import Desktop
from app.gui.discover.discover_page import DiscoverPage
from app.gui.downloads.downloads_page import DownloadsPage
from app.gui.errors import show_error
from app.gui.hardware.hardware_page import HardwarePage
from app.gui.icons import icon
from app.gui.library.library_page import LibraryPage
from app.gui.model_loader import LoadedModel
from app.gui.server.server_page import ServerPage
from app.gui.status_bar import StatusBar
from app.gui.usage.usage_page import UsagePage

DEFAULT_SIZE = QSize(1180, 760)


@dataclass(frozen=True)
class _Page:
    key: str
    title: str
    icon: str
    widget: QWidget


class MainWindow(QMainWindow):
    quit_requested = Signal()

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.setWindowTitle("Homefire")
        self.setWindowIcon(icon("homefire"))
        self.desktop = desktop
        self._shut_down = False

        self.status = StatusBar(desktop)
        self.chat = ChatPage(desktop)
        self._pages = [_Page("chat", "Chat", "chat", self.chat), *self._more_pages()]

        self.navigation = QListWidget()
        self.navigation.setObjectName("navigation")
        self.navigation.setFixedWidth(150)
        self.navigation.setIconSize(QSize(20, 20))
        self.navigation.setSpacing(2)
        self.navigation.setFrameShape(QListWidget.Shape.NoFrame)
        self.stack = QStackedWidget()
        for page in self._pages:
            self.navigation.addItem(QListWidgetItem(page.title))
            self.stack.addWidget(page.widget)
        self.navigation.currentRowChanged.connect(self._on_navigation_current_row_changed)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.navigation)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.setStatusBar(self.status)
        self._menus()
        self.tray = self._tray()
        self.restyle()
        self._restore()
        desktop.loader.model_loaded.connect(self._on_loader_model_loaded)
        desktop.pool_events.model_lost.connect(self._on_pool_model_lost)

    def _more_pages(self) -> list[_Page]:
        """The pages after Chat, in the sidebar's order."""
        desktop = self.desktop
        self.discover = DiscoverPage(desktop)
        self.downloads = DownloadsPage(desktop)
        self.library = LibraryPage(desktop)
        self.server = ServerPage(desktop)
        self.usage = UsagePage(desktop)
        self.hardware = HardwarePage(desktop)
        self.discover.download_requested.connect(self._on_discover_download_requested)
        self.downloads.download_finished.connect(lambda _result: self.library.refresh())
        self.server.server_started.connect(self.status.set_server_url)
        self.server.server_stopped.connect(lambda: self.status.set_server_url(None))
        return [
            _Page("discover", "Discover", "discover", self.discover),
            _Page("downloads", "Downloads", "downloads", self.downloads),
            _Page("library", "Library", "library", self.library),
            _Page("server", "Server", "server", self.server),
            _Page("usage", "Usage", "usage", self.usage),
            _Page("hardware", "Hardware", "hardware", self.hardware),
        ]

    def _on_discover_download_requested(self, request: DownloadRequest) -> None:
        self.downloads.start(request)
        self.statusBar().showMessage(f"Downloading {request.repo_id}: see Downloads", 5000)

    # -- navigation ----------------------------------------------------------------------------

    def page(self, key: str) -> QWidget:
        return next(p.widget for p in self._pages if p.key == key)

    @property
    def current_page(self) -> str:
        return self._pages[max(self.stack.currentIndex(), 0)].key

    def show_page(self, key: str) -> None:
        index = next(i for i, p in enumerate(self._pages) if p.key == key)
        self.navigation.setCurrentRow(index)

    def _on_navigation_current_row_changed(self, row: int) -> None:
        if 0 <= row < len(self._pages):
            self.stack.setCurrentIndex(row)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        new_chat = QAction("&New chat", self)
        new_chat.setShortcut(QKeySequence.StandardKey.New)
        new_chat.triggered.connect(self._on_new_chat_triggered)
        file_menu.addAction(new_chat)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.quit_requested.emit)
        file_menu.addAction(quit_action)

        view_menu = self.menuBar().addMenu("&View")
        for number, page in enumerate(self._pages, start=1):
            action = QAction(page.title, self)
            action.setShortcut(QKeySequence(f"Ctrl+{number}"))
            action.triggered.connect(lambda _=False, key=page.key: self.show_page(key))
            view_menu.addAction(action)

        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About Homefire", self)
        about.triggered.connect(self._on_about_triggered)
        help_menu.addAction(about)

    def _on_new_chat_triggered(self) -> None:
        self.show_page("chat")
        self.chat.new_conversation()

    def _on_about_triggered(self) -> None:
        AboutDialog(self.desktop, self).exec()

    # -- appearance ----------------------------------------------------------------------------

    def restyle(self) -> None:
        """Icons and code colours for the current palette (the OS switched light/dark)."""
        color = self.palette().color(QPalette.ColorRole.WindowText)
        for row, page in enumerate(self._pages):
            self.navigation.item(row).setIcon(icon(page.icon, color))
        self.chat.restyle()
        window = self.palette().color(QPalette.ColorRole.Window).darker(106)
        selected = self.palette().color(QPalette.ColorRole.Window).darker(118)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        self.navigation.setStyleSheet(
            f"QListWidget#navigation {{ background: {window.name()}; padding-top: 8px; }}"
            "QListWidget#navigation::item { padding: 7px 8px; border-radius: 6px; margin: 0 6px; "
            f"color: {text.name()}; }}"
            f"QListWidget#navigation::item:selected {{ background: {selected.name()}; "
            f"color: {text.name()}; font-weight: 600; }}"
        )

    def _on_loader_model_loaded(self, loaded: LoadedModel) -> None:
        """Remember the model and its settings: the next start loads it again."""
        last = LastModel.of(loaded.library_model.name, loaded.options)
        self.desktop.services.last_model.remember(last)

    def _on_pool_model_lost(self, name: str, error: WorkerLost) -> None:
        """A worker holding part of a model was lost: the model is unloaded; say which worker."""
        self.statusBar().showMessage(f"{name} was unloaded: a worker was lost", 10000)
        show_error(self, error)

    # -- tray and lifetime ---------------------------------------------------------------------

    def _tray(self) -> QSystemTrayIcon | None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            return None
        tray = QSystemTrayIcon(icon("homefire"), self)
        tray.setToolTip("Homefire")
        menu = QMenu(self)
        menu.addAction("Show Homefire", self._show_from_tray)
        menu.addSeparator()
        menu.addAction("Quit", self.quit_requested.emit)
        tray.setContextMenu(menu)
        tray.activated.connect(self._on_tray_activated)
        tray.show()
        return tray

    def _on_tray_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason == QSystemTrayIcon.ActivationReason.Trigger:
            self._show_from_tray()

    def _show_from_tray(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    def keeps_serving_in_tray(self) -> bool:
        return self.tray is not None and self.desktop.services.server is not None

    def closeEvent(self, event: QCloseEvent) -> None:
        self._save()
        if self.keeps_serving_in_tray() and not self._shut_down:
            # The endpoint keeps serving the IDE; the tray icon brings the window back.
            assert self.tray is not None
            self.hide()
            self.tray.showMessage(
                "Homefire is still serving",
                "The endpoint keeps running. Quit from the tray icon to stop it.",
                QSystemTrayIcon.MessageIcon.Information,
                4000,
            )
            event.ignore()
            return
        event.accept()
        self.quit_requested.emit()

    def _restore(self) -> None:
        settings = self.desktop.settings
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(DEFAULT_SIZE)
        page = settings.value("window/page", "chat")
        keys = [p.key for p in self._pages]
        self.show_page(str(page) if page in keys else "chat")

    def _save(self) -> None:
        settings = self.desktop.settings
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/page", self.current_page)
        settings.sync()

    def shutdown(self) -> None:
        """Save the window, stop replies, close relays, then every service (joins threads)."""
        if self._shut_down:
            return
        self._shut_down = True
        self._save()
        self.chat.shutdown()
        for page in self._pages:
            stop = getattr(page.widget, "shutdown", None)
            if stop is not None and page.widget is not self.chat:
                stop()
        self.status.close_relays()
        if self.tray is not None:
            self.tray.hide()
        self.desktop.close()
