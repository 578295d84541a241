"""The Load dialog: context, GPU layers, flash attention, KV cache type, MoE experts on CPU.

Pre-filled by the recommender for this machine; the memory estimate beside the choices is
recomputed (a pure function, microseconds) on every change. After a load, the Library page
shows the measured memory next to this estimate.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.catalog.estimator import LoadPlan, MemoryEstimate
from app.core.errors import AppError
from app.gui.library.load_plan import LoadFacts
from app.gui.model_loader import LoadChoice

GIB = 2**30
KV_TYPES = ("f16", "q8_0", "q4_0")


def gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


class LoadDialog(QDialog):
    estimate_changed = Signal(object)  # MemoryEstimate | None

    def __init__(self, facts: LoadFacts, default_ctx: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("loadDialog")
        self.facts = facts
        self.current_estimate: MemoryEstimate | None = None
        verdict = facts.verdict
        self.setWindowTitle(f"Load {facts.model.name}")
        n_layers = facts.facts.n_layers

        self.context = QSpinBox()
        self.context.setRange(256, facts.n_ctx_train or 1_048_576)
        self.context.setSingleStep(1024)
        self.context.setSuffix(" tokens")
        self.context.setValue(min(default_ctx, facts.n_ctx_train or default_ctx))
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(0, n_layers)
        self.gpu_layers.setSuffix(f" of {n_layers} layers")
        self.gpu_layers.setValue(min(verdict.gpu_layers, n_layers))
        if facts.gpu_backend is None:
            self.gpu_layers.setEnabled(False)
            self.gpu_layers.setToolTip("No GPU that this llama.cpp build can use was found.")
        self.flash = QCheckBox("Flash attention")
        self.kv_type = QComboBox()
        self.kv_type.addItems(KV_TYPES)
        self.moe_cpu = QSpinBox()
        self.moe_cpu.setRange(0, n_layers)
        self.moe_cpu.setSuffix(" layers")
        self.moe_cpu.setValue(verdict.cpu_moe_layers)
        self.moe_cpu.setEnabled(facts.facts.is_moe and facts.gpu_backend is not None)
        if not facts.facts.is_moe:
            self.moe_cpu.setToolTip("This model is not a mixture of experts.")

        form = QFormLayout()
        form.addRow("Context length", self.context)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("", self.flash)
        form.addRow("KV cache type", self.kv_type)
        form.addRow("MoE experts on CPU", self.moe_cpu)
        choices = QGroupBox("Settings")
        choices.setLayout(form)

        self.verdict_label = QLabel(f"<b>Recommended for this machine:</b> {verdict.label}")
        self.verdict_label.setWordWrap(True)
        self.estimate_label = QLabel()
        self.estimate_label.setObjectName("estimateLabel")
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setTextFormat(Qt.TextFormat.RichText)
        self.estimate_label.setMinimumWidth(300)
        estimate_box = QGroupBox("Memory estimate")
        box = QVBoxLayout(estimate_box)
        box.addWidget(self.verdict_label)
        box.addWidget(self.estimate_label, 1)

        columns = QHBoxLayout()
        columns.addWidget(choices)
        columns.addWidget(estimate_box, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.load_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.load_button.setText("Load")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(columns)
        layout.addWidget(buttons)

        for box_widget in (self.context, self.gpu_layers, self.moe_cpu):
            box_widget.valueChanged.connect(self._on_choice_changed)
        self.flash.toggled.connect(self._on_flash_toggled)
        self.kv_type.currentTextChanged.connect(self._on_kv_type_current_text_changed)
        self._on_choice_changed()

    def choice(self) -> LoadChoice:
        return LoadChoice(
            n_ctx=self.context.value(),
            n_gpu_layers=self.gpu_layers.value(),
            flash_attn=self.flash.isChecked(),
            kv_cache_type=self.kv_type.currentText(),  # type: ignore[arg-type]
            moe_experts_on_cpu_layers=self.moe_cpu.value(),
        )

    def _on_flash_toggled(self, on: bool) -> None:
        if not on and self.kv_type.currentText() != "f16":
            self.kv_type.setCurrentText("f16")  # llama.cpp needs flash attention for it
        self._on_choice_changed()

    def _on_kv_type_current_text_changed(self, kv_type: str) -> None:
        if kv_type != "f16" and not self.flash.isChecked():
            self.flash.setChecked(True)
        self._on_choice_changed()

    def _on_choice_changed(self) -> None:
        choice = self.choice()
        plan = LoadPlan(
            n_ctx=choice.n_ctx,
            kv_type=choice.kv_cache_type,
            flash_attn=choice.flash_attn,
            n_gpu_layers=choice.n_gpu_layers,
            n_cpu_moe=choice.moe_experts_on_cpu_layers,
            gpu_backend=self.facts.gpu_backend if choice.n_gpu_layers else None,
        )
        try:
            est = self.facts.estimate(plan)
        except AppError as exc:
            self.current_estimate = None
            self.estimate_label.setText(f"<span style='color:#d9480f'>{exc.user_message}</span>")
            self.load_button.setEnabled(False)
            self.estimate_changed.emit(None)
            return
        self.current_estimate = est
        self.load_button.setEnabled(True)
        self.estimate_label.setText(self._describe(est))
        self.estimate_changed.emit(est)

    def _describe(self, est: MemoryEstimate) -> str:
        profile = self.facts.profile
        rows = "".join(
            f"<tr><td>{item.label}</td><td>{item.device.upper()}</td>"
            f"<td align='right'>{gib(item.bytes * est.correction)}</td></tr>"
            for item in est.items
        )
        available = profile.ram_available_bytes or profile.ram_total_bytes
        fits = est.ram_bytes <= available
        verdict = (
            f"fits: {gib(available)} of RAM available now"
            if fits
            else f"<span style='color:#d9480f'>more than the {gib(available)} of RAM "
            "available now</span>"
        )
        gpu = f"<br>GPU: <b>{gib(est.gpu_bytes)}</b>" if est.gpu_bytes else ""
        return (
            f"RAM: <b>{gib(est.ram_bytes)}</b> (estimated){gpu}<br>{verdict}"
            f"<table cellspacing='4'>{rows}</table>"
            f"<small>Basis: {est.basis}</small>"
        )
