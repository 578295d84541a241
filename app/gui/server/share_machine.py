"""The Server page's "Share this machine": ``homefire worker`` in a child process, from a switch.

Another Homefire can then put part of a model too big for it on this machine (``homefire serve
--worker HOST:PORT`` or the Load dialog's workers). ggml's RPC protocol has no authentication, so
all interfaces are offered only after the user confirms the network in plain words (the
command's own warning). The worker is ``services.shared_worker``: AppServices starts and stops it.
"""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QMessageBox,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.cluster.worker import DEFAULT_PORT
from app.core.cluster.worker_process import WorkerProcess
from app.core.cluster.worker_server import UNAUTHENTICATED_WARNING
from app.core.server.host_check import is_loopback
from app.gui.desktop import Desktop
from app.gui.errors import show_error

LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"
HEALTH_POLL_MS = 1000  # notices a worker that ended on its own


def network_warning(host: str, port: int) -> str:
    """The worker's own warning, for a confirmation dialog before sharing beyond loopback."""
    text = UNAUTHENTICATED_WARNING.format(
        address=f"{host}:{port}" if port else host, devices="processors and memory"
    ).removeprefix("warning: ")
    return text[:1].upper() + text[1:]


class ShareMachineBox(QGroupBox):
    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__("Share this machine", parent)
        self.setObjectName("shareMachineBox")
        self._desktop = desktop
        self._busy = False
        self.confirmation: QMessageBox | None = None

        self.share = QCheckBox("Share this machine's memory with another Homefire")
        self.share.setObjectName("shareMachine")
        self.share.setToolTip(
            "Runs `homefire worker`: another Homefire can put part of a model too big for it "
            "here (`homefire serve --worker HOST:PORT`, or the Load dialog's workers)"
        )
        self.share.toggled.connect(self._on_share_toggled)
        self.interface = QComboBox()
        self.interface.setObjectName("shareInterface")
        self.interface.addItem(f"This machine only ({LOOPBACK})", LOOPBACK)
        self.interface.addItem(f"All network interfaces ({ALL_INTERFACES})", ALL_INTERFACES)
        self.interface.setMaximumWidth(320)
        self.port = QSpinBox()
        self.port.setObjectName("sharePort")
        self.port.setRange(0, 65535)
        self.port.setSpecialValueText("any free port")
        self.port.setValue(DEFAULT_PORT)
        self.port.setMaximumWidth(180)
        self.state = QLabel()
        self.state.setObjectName("shareState")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.addRow("Listen on", self.interface)
        form.addRow("Port", self.port)
        layout = QVBoxLayout(self)
        layout.addWidget(self.share)
        layout.addLayout(form)
        layout.addWidget(self.state)

        self._health = QTimer(self)
        self._health.setInterval(HEALTH_POLL_MS)
        self._health.timeout.connect(self._on_health_timeout)
        self._health.start()
        self._show_state()

    @property
    def worker(self) -> WorkerProcess | None:
        return self._desktop.services.shared_worker

    @property
    def host(self) -> str:
        return str(self.interface.currentData())

    # -- on and off --------------------------------------------------------------------------

    def _on_share_toggled(self, on: bool) -> None:
        if self._busy:
            return
        if not on:
            self._stop()
        elif is_loopback(self.host):
            self._start(trust_network=False)
        else:
            self._confirm_network()

    def _confirm_network(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Warning,
            "Share this machine on your network?",
            network_warning(self.host, self.port.value()),
            QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setObjectName("shareConfirmation")
        share = box.addButton("Share on my network", QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _result: self._on_confirmed(box.clickedButton() is share))
        self.confirmation = box
        box.open()

    def _on_confirmed(self, confirmed: bool) -> None:
        self.confirmation = None
        if confirmed:
            self._start(trust_network=True)
        else:
            self._set_checked(False)

    def _start(self, *, trust_network: bool) -> None:
        self._set_busy("Starting the worker…")
        services = self._desktop.services
        host, port = self.host, self.port.value()
        self._desktop.bridge.run(
            lambda: services.share_machine(host, port, trust_network=trust_network),
            lambda _worker: self._done(),
            self._on_failed,
            owner=self,
        )

    def _stop(self) -> None:
        self._set_busy("Stopping the worker…")
        self._desktop.bridge.run(
            self._desktop.services.stop_sharing,
            lambda _none: self._done(),
            self._on_failed,
            owner=self,
        )

    def _done(self) -> None:
        self._busy = False
        self._show_state()

    def _on_failed(self, exc: BaseException) -> None:
        self._busy = False
        self._show_state()
        show_error(self, exc)

    def _on_health_timeout(self) -> None:
        worker = self.worker
        if self._busy or worker is None or worker.running:
            return
        # It ended on its own (killed, or its server stopped): say so and switch off.
        code = worker.exit_code
        self._desktop.services.stop_sharing()  # joins its finished readers at once
        self._show_state(f"<b>Not shared:</b> the worker stopped on its own (exit code {code}).")

    # -- showing -----------------------------------------------------------------------------

    def _set_busy(self, text: str) -> None:
        self._busy = True
        self.state.setText(text)
        for widget in (self.share, self.interface, self.port):
            widget.setEnabled(False)

    def _set_checked(self, on: bool) -> None:
        with QSignalBlocker(self.share):
            self.share.setChecked(on)

    def _show_state(self, stopped: str | None = None) -> None:
        worker = self.worker
        running = worker is not None and worker.running
        self._set_checked(running)
        self.share.setEnabled(True)
        for widget in (self.interface, self.port):
            widget.setEnabled(not running)
        if worker is not None and running:
            address = worker.address
            if is_loopback(address.host):
                where = f"this machine only: other Homefires here use --worker {address}"
            else:
                where = (
                    f"your network: other machines use --worker with this machine's address "
                    f"and port {address.port}"
                )
            shared = "; ".join(worker.shared) or "its memory"
            self.state.setText(f"<b>Sharing</b> at {address} ({where}).<br>Shared: {shared}")
        else:
            self.state.setText(
                stopped
                or "<b>Not shared.</b> Share this machine to let a Homefire elsewhere run a "
                "model too big for it with part of it here."
            )

    def shutdown(self) -> None:
        self._health.stop()
