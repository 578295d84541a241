"""The Server page: start/stop the endpoint, its address and access rules, requests, client setup.

Starting binds the socket on a worker (a busy port is an error shown in words); LAN access is
only offered with an API key, as the server itself insists. The request log is the server's own
(``services.request_log``), relayed from the HTTP thread.
"""

from __future__ import annotations

import secrets

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.engine.engine import SlotUsage
from app.core.errors import ConfigError, SecretsUnavailable
from app.core.server.app import ServerConfig
from app.core.server.client_snippets import Endpoint, snippets
from app.core.server.config import ServerChoices, saved_api_key, server_config
from app.core.server.host_check import is_loopback
from app.core.server.port import offer_port
from app.core.server.request_log import RequestLog, RequestRecord
from app.core.server.runner import ServerRunner
from app.core.storage.secrets import delete_secret, save_secret
from app.gui.desktop import Desktop
from app.gui.errors import show_error
from app.gui.model_loader import LoadedModel
from app.gui.server.share_machine import ShareMachineBox

SLOTS_POLL_MS = 500
LOG_COLUMNS = ("Time", "Client", "Request", "Model", "Tokens in / out", "Duration", "Status")
MAX_ROWS = 500


def slots_text(usage: SlotUsage) -> str:
    if not usage.slots:
        return "Requests at once: no model loaded"
    queued = f", {usage.queued} waiting" if usage.queued else ""
    return f"Requests at once: {usage.active} of {usage.slots} slots busy{queued}"


class RequestRelay(QObject):
    """The server's request log (HTTP thread) as a GUI-thread signal."""

    request_logged = Signal(object)  # RequestRecord

    def __init__(self, log: RequestLog, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._unsubscribe = log.subscribe(self.request_logged.emit)

    def close(self) -> None:
        self._unsubscribe()


class ServerPage(QWidget):
    server_started = Signal(str)  # URL
    server_stopped = Signal()

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("serverPage")
        self._desktop = desktop
        settings = desktop.services.settings.server

        self.state = QLabel()
        self.state.setObjectName("serverState")
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.start_button = QPushButton("Start server")
        self.start_button.setObjectName("startServer")
        self.start_button.clicked.connect(self._on_start_button_clicked)
        self.copy_url = QPushButton("Copy URL")
        self.copy_url.clicked.connect(self._on_copy_url_clicked)

        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("any free port")
        # Until the user picks a port, offer Ollama's 11434 when it is free: Ollama clients
        # (Copilot, JetBrains, Open WebUI) then find Homefire with no configuration.
        chosen = "port" in settings.model_fields_set
        self.port.setValue(settings.port if chosen else offer_port(fallback=settings.port))
        self.port.setToolTip("11434 is Ollama's port: Ollama clients find Homefire there")
        self.port.setMaximumWidth(180)
        self.lan = QCheckBox("Allow other devices on my network (needs an API key)")
        self.lan.setChecked(not is_loopback(settings.host))
        self.api_key = QLineEdit()
        self.api_key.setPlaceholderText("none: loopback only")
        self.api_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_key.setText(saved_api_key() or "")
        generate = QPushButton("Generate")
        generate.setObjectName("generateKey")
        generate.clicked.connect(self._on_generate_clicked)
        reveal = QCheckBox("Show")
        reveal.toggled.connect(
            lambda on: self.api_key.setEchoMode(
                QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
            )
        )
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(reveal)
        key_row.addWidget(generate)
        self.cors = QLineEdit(", ".join(settings.cors_origins))
        self.cors.setPlaceholderText("none (browsers on other sites are refused)")
        self.cors.setToolTip("Web origins allowed to call the endpoint, e.g. http://localhost:3000")
        self.api_key.textChanged.connect(self._update_controls)
        self.lan.toggled.connect(self._update_controls)
        self.cors.textChanged.connect(self._update_controls)

        # Applies at once, running or not: the pool reads the setting on every request.
        self.load_on_request = QCheckBox("Load models on request")
        self.load_on_request.setObjectName("loadOnRequest")
        self.load_on_request.setChecked(desktop.services.settings.engine.load_on_request)
        self.load_on_request.setToolTip(
            "A request naming a library model that is not loaded loads it (idle ones unload "
            "when memory is needed or after the keep-alive); off: only loaded models answer"
        )
        self.load_on_request.toggled.connect(self._on_load_on_request_toggled)

        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("", self.lan)
        form.addRow("", self.load_on_request)
        form.addRow("API key", key_row)
        form.addRow("CORS origins", self.cors)
        top = QHBoxLayout()
        top.addWidget(self.state, 1)
        top.addWidget(self.copy_url)
        top.addWidget(self.start_button)
        # Requests decoded at once and waiting, polled: the engine thread must not wait on Qt.
        self.slots = QLabel()
        self.slots.setObjectName("slotUsage")
        self._slots_timer = QTimer(self)
        self._slots_timer.setInterval(SLOTS_POLL_MS)
        self._slots_timer.timeout.connect(self._show_slots)
        self._slots_timer.start()
        settings_box = QGroupBox("Endpoint")
        box = QVBoxLayout(settings_box)
        box.addLayout(top)
        box.addWidget(self.slots)
        box.addLayout(form)

        self.log = QTableWidget(0, len(LOG_COLUMNS))
        self.log.setObjectName("requestLog")
        self.log.setHorizontalHeaderLabels(LOG_COLUMNS)
        self.log.verticalHeader().hide()
        self.log.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.log.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.log.setShowGrid(False)
        self.log.setWordWrap(False)
        header = self.log.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        log_box = QGroupBox("Requests (measured)")
        QVBoxLayout(log_box).addWidget(self.log)

        self.snippets = QTabWidget()
        self.snippets.setObjectName("clientSnippets")
        self._snippet_views: dict[str, QPlainTextEdit] = {}
        snippets_box = QGroupBox("Connect your tools")
        QVBoxLayout(snippets_box).addWidget(self.snippets)

        lower = QSplitter(Qt.Orientation.Vertical)
        lower.addWidget(log_box)
        lower.addWidget(snippets_box)
        lower.setSizes([260, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.addWidget(QLabel("<h2>Server</h2>"))
        layout.addWidget(settings_box)
        self.sharing = ShareMachineBox(desktop)
        layout.addWidget(self.sharing)
        layout.addWidget(lower, 1)

        self._relay = RequestRelay(desktop.services.request_log, self)
        self._relay.request_logged.connect(self._on_relay_request_logged)
        for record in desktop.services.request_log.records():
            self._on_relay_request_logged(record)
        desktop.loader.model_loaded.connect(self._on_loader_model_loaded)
        self._busy = False
        self._show_state()
        self._show_slots()
        self._fill_snippets()
        self.api_key.textChanged.connect(self._fill_snippets)

    # -- start and stop ------------------------------------------------------------------------

    @property
    def runner(self) -> ServerRunner | None:
        return self._desktop.services.server

    def config(self) -> ServerConfig:
        """The page's choices over the saved settings, built as ``homefire serve`` builds them."""
        return server_config(
            self._desktop.services.settings.server,
            ServerChoices(
                lan=self.lan.isChecked(),
                port=self.port.value(),
                api_key=self.api_key.text(),  # empty: no key, on purpose
                cors_origins=tuple(o.strip() for o in self.cors.text().split(",") if o.strip()),
            ),
        )

    def start(self) -> None:
        if self._busy or self.runner is not None:
            return
        try:
            config = self.config()
        except ConfigError as exc:
            show_error(self, exc)
            return
        self._save_settings(config)
        self._remember_key(config.api_key)
        self._set_busy("Starting…")
        services = self._desktop.services
        self._desktop.bridge.run(
            lambda: services.start_server(config), self._on_started, self._on_failed, owner=self
        )

    def _remember_key(self, key: str | None) -> None:
        """The key goes to the OS keyring (never a file), so the next start offers it again."""
        try:
            if key:
                save_secret("server-api-key", key)
            else:
                delete_secret("server-api-key")
        except SecretsUnavailable as exc:
            self.api_key.setToolTip(f"Kept for this session only: {exc.user_message}")

    def stop(self) -> None:
        runner = self.runner
        if self._busy or runner is None:
            return
        self._set_busy("Stopping…")
        services = self._desktop.services
        self._desktop.bridge.run(
            services.stop_server, self._on_stopped, self._on_failed, owner=self
        )

    def _on_start_button_clicked(self) -> None:
        if self.runner is None:
            self.start()
        else:
            self.stop()

    def _on_started(self, runner: ServerRunner) -> None:
        self._busy = False
        self._show_state()
        self._show_slots()
        self._fill_snippets()
        self.server_started.emit(runner.url)

    def _on_stopped(self, _none: object) -> None:
        self._busy = False
        self._show_state()
        self._show_slots()
        self._fill_snippets()
        self.server_stopped.emit()

    def _on_failed(self, exc: BaseException) -> None:
        self._busy = False
        self._show_state()
        self._show_slots()
        show_error(self, exc)

    def _set_busy(self, text: str) -> None:
        self._busy = True
        self.state.setText(text)
        self.start_button.setEnabled(False)

    def _on_load_on_request_toggled(self, on: bool) -> None:
        services = self._desktop.services
        services.settings.engine.load_on_request = on
        services.settings_store.save(services.settings)

    def _save_settings(self, config: ServerConfig) -> None:
        services = self._desktop.services
        server = services.settings.server
        server.port = config.port if config.port else server.port
        server.host = config.host
        server.cors_origins = list(config.cors_origins)
        services.settings_store.save(services.settings)

    def _show_state(self) -> None:
        runner = self.runner
        running = runner is not None
        if runner is not None:
            where = "on this machine only" if is_loopback(runner.config.host) else "on your network"
            self.state.setText(
                f"<b>Serving</b> at <a href='{runner.url}/v1/models'>{runner.url}/v1</a> ({where}); "
                f"Ollama clients use {runner.url}"
            )
            self.state.setOpenExternalLinks(True)
        else:
            self.state.setText("<b>Stopped.</b> The endpoint speaks the OpenAI and Ollama APIs.")
        self.start_button.setText("Stop server" if running else "Start server")
        self.start_button.setEnabled(True)
        self.copy_url.setEnabled(running)
        for widget in (self.port, self.lan, self.api_key, self.cors):
            widget.setEnabled(not running)
        self._update_controls()

    def _show_slots(self) -> None:
        usages = [m.engine.slot_usage for m in self._desktop.services.pool.models()]
        total = SlotUsage(
            active=sum(u.active for u in usages),
            slots=sum(u.slots for u in usages),
            queued=sum(u.queued for u in usages),
        )
        self.slots.setText(slots_text(total))

    def _update_controls(self) -> None:
        if self.runner is None and not self._busy:
            try:
                self.config()
                problem = ""
            except ConfigError as exc:  # LAN without a key, a wildcard origin
                problem = exc.user_message
            self.start_button.setEnabled(not problem)
            self.start_button.setToolTip(problem)

    def _on_generate_clicked(self) -> None:
        self.api_key.setText("hf-" + secrets.token_urlsafe(24))

    def _on_copy_url_clicked(self) -> None:
        if self.runner is not None:
            QGuiApplication.clipboard().setText(f"{self.runner.url}/v1")

    # -- request log ---------------------------------------------------------------------------

    def _on_relay_request_logged(self, record: RequestRecord) -> None:
        if self.log.rowCount() >= MAX_ROWS:
            self.log.removeRow(self.log.rowCount() - 1)
        self.log.insertRow(0)
        tokens = (
            "–"
            if record.prompt_tokens is None and record.completion_tokens is None
            else f"{record.prompt_tokens or 0:,} / {record.completion_tokens or 0:,}"
        )
        cells = (
            record.at.astimezone().strftime("%H:%M:%S"),
            record.client,
            f"{record.method} {record.path}",
            record.model or "–",
            tokens,
            f"{record.duration_s * 1000:,.0f} ms"
            if record.duration_s < 10
            else f"{record.duration_s:,.1f} s",
            str(record.status),
        )
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if column == 6 and record.status >= 400:
                item.setForeground(Qt.GlobalColor.red)
            self.log.setItem(0, column, item)

    # -- snippets ------------------------------------------------------------------------------

    def _on_loader_model_loaded(self, _loaded: LoadedModel) -> None:
        self._fill_snippets()

    def _fill_snippets(self) -> None:
        loaded = self._desktop.loader.current
        runner = self.runner
        port = (runner.port if runner else None) or self.port.value() or 8080
        endpoint = Endpoint(
            base_url=runner.url if runner else f"http://127.0.0.1:{port}",
            model=loaded.info.model_id if loaded else "<model>",
            api_key=self.api_key.text().strip() or None,
            n_ctx=loaded.info.n_ctx if loaded else 4096,
        )
        current = self.snippets.currentIndex()
        for snippet in snippets(endpoint):
            view = self._snippet_views.get(snippet.client)
            if view is None:
                page = QWidget()
                view = QPlainTextEdit()
                view.setReadOnly(True)
                view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
                view.setObjectName(f"snippet-{snippet.client}")
                copy = QPushButton("Copy")
                copy.clicked.connect(lambda _=False, v=view: self._copy_snippet(v))
                where = QLabel()
                where.setObjectName("where")
                row = QHBoxLayout()
                row.addWidget(where, 1)
                row.addWidget(copy)
                column = QVBoxLayout(page)
                column.addLayout(row)
                column.addWidget(view)
                self.snippets.addTab(page, snippet.client)
                self._snippet_views[snippet.client] = view
            parent = view.parentWidget()
            label = parent.findChild(QLabel, "where") if parent else None
            if label is not None:
                label.setText(f"Paste into {snippet.where}")
            view.setPlainText(snippet.text)
        self.snippets.setCurrentIndex(max(current, 0))

    def snippet_text(self, client: str) -> str:
        return self._snippet_views[client].toPlainText()

    def _copy_snippet(self, view: QPlainTextEdit) -> None:
        QGuiApplication.clipboard().setText(view.toPlainText())

    def shutdown(self) -> None:
        self._slots_timer.stop()
        self.sharing.shutdown()
        self._relay.close()
