"""How full the context window is, with a warning before the conversation outgrows it."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

WARN_SHARE = 0.8  # warn early: the next reply needs room too


class ContextMeter(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("contextMeter")
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(6)
        self.bar.setFixedWidth(120)
        self.label = QLabel()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.bar)
        layout.addWidget(self.label)
        self.warning = False
        self.set_unknown("no model loaded")

    def set_unknown(self, why: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.label.setText(f"context: {why}")
        self._set_warning(False)
        self.setToolTip("")

    def set_usage(self, used: int, n_ctx: int) -> None:
        self.bar.setRange(0, max(n_ctx, 1))
        self.bar.setValue(min(used, n_ctx))
        share = used / n_ctx if n_ctx else 1.0
        warn = share >= WARN_SHARE
        text = f"context {used:,} / {n_ctx:,} tokens"
        if used >= n_ctx:
            text += " — full: start a new chat or load the model with a larger context"
        elif warn:
            text += " — almost full: start a new chat or load a larger context soon"
        self.label.setText(text)
        self.setToolTip(
            "Counted by the loaded model's tokenizer (measured): the system prompt, the "
            "conversation and what you are typing."
        )
        self._set_warning(warn)

    def _set_warning(self, warn: bool) -> None:
        self.warning = warn
        color = "#d9480f" if warn else ""
        self.label.setStyleSheet(f"color: {color};" if color else "")
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {color}; }}" if color else "")
