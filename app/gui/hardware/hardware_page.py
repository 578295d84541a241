"""The Hardware page: what ``homefire hw`` finds, live memory use, and the planning profiles."""

from __future__ import annotations

import html

import psutil
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from app.core.hardware.description import as_rich_text
from app.core.hardware.nvidia import GpuLiveSample, GpuMonitor, NvmlLoader, import_pynvml
from app.core.hardware.profile import HardwareProfile
from app.core.hardware.profiles import list_profiles
from app.core.sizes import format_size
from app.gui.desktop import Desktop
from app.gui.errors import show_error

LIVE_MS = 1000
THIS_MACHINE = "This machine (detected)"


def _gpu_line(sample: GpuLiveSample) -> str:
    power = "" if sample.power_draw_w is None else f", drawing {sample.power_draw_w:.0f} W"
    return (
        f"GPU {sample.index} {html.escape(sample.name)}: "
        f"{format_size(sample.memory_used_bytes)} of {format_size(sample.memory_total_bytes)} "
        f"in use{power}"
    )


class HardwarePage(QWidget):
    profile_shown = Signal(str)

    def __init__(
        self,
        desktop: Desktop,
        parent: QWidget | None = None,
        gpu_loader: NvmlLoader = import_pynvml,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("hardwarePage")
        self._desktop = desktop
        self._detected: HardwareProfile | None = None
        self._profiles = {p.name: p for p in list_profiles(desktop.services.paths)}

        self.chooser = QComboBox()
        self.chooser.addItem(THIS_MACHINE)
        self.chooser.addItems(sorted(self._profiles))
        self.chooser.currentTextChanged.connect(self._on_chooser_current_text_changed)
        self.details = QLabel("Detecting…")
        self.details.setObjectName("hardwareDetails")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.RichText)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        profile_box = QGroupBox("Profile")
        box = QVBoxLayout(profile_box)
        row = QHBoxLayout()
        row.addWidget(QLabel("Plan for"))
        row.addWidget(self.chooser, 1)
        box.addLayout(row)
        box.addWidget(self.details, 1)

        self.ram_bar = QProgressBar()
        self.ram_bar.setObjectName("ramBar")
        self.ram_label = QLabel()
        self.process_label = QLabel()
        live = QGroupBox("Live (measured every second)")
        live_layout = QVBoxLayout(live)
        live_layout.addWidget(QLabel("RAM in use"))
        live_layout.addWidget(self.ram_bar)
        live_layout.addWidget(self.ram_label)
        live_layout.addWidget(self.process_label)
        self.gpu_label = QLabel()
        self.gpu_label.setObjectName("gpuLive")
        self.gpu_label.setTextFormat(Qt.TextFormat.RichText)
        live_layout.addWidget(self.gpu_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.addWidget(QLabel("<h2>Hardware</h2>"))
        layout.addWidget(live)
        layout.addWidget(profile_box, 1)

        self._process = psutil.Process()
        # NVML stays open while the page lives: one sample a second costs a few driver calls.
        self._gpus, no_gpu_reason = GpuMonitor.open(gpu_loader)
        if self._gpus is None:
            self.gpu_label.setText(f"GPU memory: nothing to measure ({no_gpu_reason})")
        self._timer = QTimer(self)
        self._timer.setInterval(LIVE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()
        self._on_timer_timeout()
        desktop.bridge.watch(
            desktop.hardware_profile(), self._on_profile_detected, self._on_failed, owner=self
        )

    def _on_profile_detected(self, profile: HardwareProfile) -> None:
        self._detected = profile
        if self.chooser.currentText() == THIS_MACHINE:
            self._show(profile)

    def _on_failed(self, exc: BaseException) -> None:
        self.details.setText("This machine could not be read.")
        show_error(self, exc)

    def _on_chooser_current_text_changed(self, name: str) -> None:
        profile = self._detected if name == THIS_MACHINE else self._profiles.get(name)
        if profile is not None:
            self._show(profile)

    def _show(self, profile: HardwareProfile) -> None:
        models_dir = self._desktop.services.paths.models_dir
        self.details.setText(
            as_rich_text(profile, models_dir if profile.source == "detected" else None)
        )
        self.profile_shown.emit(profile.name)

    def _on_timer_timeout(self) -> None:
        memory = psutil.virtual_memory()
        used = memory.total - memory.available
        self.ram_bar.setRange(0, 1000)
        self.ram_bar.setValue(round(used / memory.total * 1000))
        self.ram_bar.setFormat(f"{format_size(used)} of {format_size(memory.total)}")
        self.ram_label.setText(f"{format_size(memory.available)} available")
        try:
            rss = self._process.memory_info().rss
        except psutil.Error:
            return
        self.process_label.setText(f"Homefire (with the loaded model): {format_size(rss)} resident")
        if self._gpus is not None:
            self.gpu_label.setText("<br>".join(_gpu_line(s) for s in self._gpus.sample()))

    def shutdown(self) -> None:
        self._timer.stop()
        if self._gpus is not None:
            self._gpus.close()
            self._gpus = None
