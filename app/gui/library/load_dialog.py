"""The Load dialog: context, GPU layers, flash attention, KV cache type, MoE experts on CPU,
the workers that hold part of the model.

Pre-filled by the recommender for this machine; the memory estimate and the verdict beside the
choices are recomputed (pure functions, microseconds) on every change, by the same rule the
recommender judged with. After a load, the Library page shows the measured memory next to this
estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

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
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.catalog.estimator import MemoryEstimate, parallel_cost_bytes
from app.core.catalog.fit import LoadFit
from app.core.catalog.load_plan import LoadFacts
from app.core.cluster.worker import parse_workers
from app.core.errors import AppError
from app.core.library.model import LibraryModel
from app.core.load_options import KV_CACHE_TYPES, LoadOptions
from app.core.sizes import format_size

SHOWN_PARALLEL = 4  # slots whose cost is shown: chat, an agent and autocomplete at once


class LoadDialog(QDialog):
    estimate_changed = Signal(object)  # MemoryEstimate | None

    def __init__(
        self,
        model: LibraryModel,
        facts: LoadFacts,
        parent: QWidget | None = None,
        workers: Sequence[str] = (),
    ):
        super().__init__(parent)
        self.setObjectName("loadDialog")
        self.model = model
        self.facts = facts
        self.current_fit: LoadFit | None = None
        verdict = facts.verdict
        start = facts.suggested
        self.setWindowTitle(f"Load {model.name}")
        n_layers = facts.facts.n_layers

        self.context = QSpinBox()
        self.context.setRange(256, facts.n_ctx_train or 1_048_576)
        self.context.setSingleStep(1024)
        self.context.setSuffix(" tokens")
        self.context.setValue(start.n_ctx)
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(0, n_layers)
        self.gpu_layers.setSuffix(f" of {n_layers} layers")
        self.gpu_layers.setValue(n_layers if start.n_gpu_layers < 0 else start.n_gpu_layers)
        if facts.gpu_backend is None:
            self.gpu_layers.setEnabled(False)
            self.gpu_layers.setToolTip("No GPU that this llama.cpp build can use was found.")
        self.flash = QCheckBox("Flash attention")
        self.flash.setChecked(start.flash_attn)
        self.kv_cache_type = QComboBox()
        self.kv_cache_type.addItems(KV_CACHE_TYPES)
        self.kv_cache_type.setCurrentIndex(KV_CACHE_TYPES.index(start.kv_cache_type))
        self.moe_experts_on_cpu = QSpinBox()
        self.moe_experts_on_cpu.setRange(0, n_layers)
        self.moe_experts_on_cpu.setSuffix(" layers")
        self.moe_experts_on_cpu.setValue(start.moe_experts_on_cpu_layers)
        self.moe_experts_on_cpu.setEnabled(facts.facts.is_moe and facts.gpu_backend is not None)
        if not facts.facts.is_moe:
            self.moe_experts_on_cpu.setToolTip("This model is not a mixture of experts.")
        self.workers = QLineEdit(" ".join(workers))
        self.workers.setObjectName("workersField")
        self.workers.setPlaceholderText("none: this machine only")
        self.workers.setToolTip(
            "Machines running `homefire worker` that hold part of the model, as host:port, "
            "separated by commas or spaces. Their layers travel over the network: a model that "
            "fits this machine alone runs faster without workers."
        )

        form = QFormLayout()
        form.addRow("Context length", self.context)
        form.addRow("GPU layers", self.gpu_layers)
        form.addRow("", self.flash)
        form.addRow("KV cache type", self.kv_cache_type)
        form.addRow("MoE experts on CPU", self.moe_experts_on_cpu)
        form.addRow("Workers", self.workers)
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

        for box_widget in (self.context, self.gpu_layers, self.moe_experts_on_cpu):
            box_widget.valueChanged.connect(self._on_choice_changed)
        self.workers.textChanged.connect(self._on_choice_changed)
        self.flash.toggled.connect(self._on_flash_toggled)
        self.kv_cache_type.currentTextChanged.connect(self._on_kv_cache_type_current_text_changed)
        self._on_choice_changed()

    @property
    def current_estimate(self) -> MemoryEstimate | None:
        return self.current_fit.estimate if self.current_fit else None

    def options(self) -> LoadOptions:
        layers = self.gpu_layers.value()
        every_layer = layers == self.gpu_layers.maximum() and layers > 0
        return LoadOptions(
            self.facts.path,
            n_ctx=self.context.value(),
            # Every layer means the output layer too, as the recommender planned it (-1).
            n_gpu_layers=-1 if every_layer else layers,
            flash_attn=self.flash.isChecked(),
            kv_cache_type=KV_CACHE_TYPES[self.kv_cache_type.currentIndex()],
            moe_experts_on_cpu_layers=self.moe_experts_on_cpu.value(),
            model_id=self.model.name,
            workers=tuple(str(address) for address in parse_workers(self.workers.text())),
        )

    def _on_flash_toggled(self, on: bool) -> None:
        if not on and self.kv_cache_type.currentText() != "f16":
            self.kv_cache_type.setCurrentText("f16")  # llama.cpp needs flash attention for it
        self._on_choice_changed()

    def _on_kv_cache_type_current_text_changed(self, kv_cache_type: str) -> None:
        if kv_cache_type != "f16" and not self.flash.isChecked():
            self.flash.setChecked(True)
        self._on_choice_changed()

    def _on_choice_changed(self) -> None:
        try:
            fit = self.facts.judge(self.options())
        except AppError as exc:
            self.current_fit = None
            self.estimate_label.setText(f"<span style='color:#d9480f'>{exc.user_message}</span>")
            self.load_button.setEnabled(False)
            self.estimate_changed.emit(None)
            return
        self.current_fit = fit
        self.load_button.setEnabled(True)
        self.estimate_label.setText(self._describe(fit))
        self.estimate_changed.emit(fit.estimate)

    def _describe(self, fit: LoadFit) -> str:
        est = fit.estimate
        rows = "".join(
            f"<tr><td>{line.label}</td><td>{line.device.upper()}</td>"
            f"<td align='right'>{format_size(line.bytes)}</td></tr>"
            for line in fit.lines
        )
        verdict = (
            f"{fit.label} ({fit.reason})"
            if fit.fits
            else f"<span style='color:#d9480f'>does not fit: {fit.reason}</span>"
        )
        gpu = f"<br>GPU: <b>{format_size(est.gpu_bytes)}</b>" if est.gpu_bytes else ""
        slots = replace(est.plan, parallel=SHOWN_PARALLEL)
        extra = parallel_cost_bytes(self.facts.facts, slots) * est.correction
        parallel = f"<br>{SHOWN_PARALLEL} parallel: +{format_size(extra)} (requests at once)"
        return (
            f"RAM: <b>{format_size(est.ram_bytes)}</b> (estimated){gpu}{parallel}<br>{verdict}"
            f"<table cellspacing='4'>{rows}</table>"
            f"<small>Basis: {est.basis}</small>"
        )
