"""System prompt and sampling for one conversation."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QPlainTextEdit,
    QSpinBox,
    QWidget,
)

from app.core.chats.conversation import ChatSettings


class ChatSettingsDialog(QDialog):
    def __init__(self, settings: ChatSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Conversation settings")
        self._settings = settings
        self.system_prompt = QPlainTextEdit(settings.system_prompt)
        self.system_prompt.setPlaceholderText("e.g. You are a concise senior Python reviewer.")
        self.temperature = self._double(settings.temperature, 0.0, 2.0, 0.05)
        self.top_p = self._double(settings.top_p, 0.0, 1.0, 0.01)
        self.min_p = self._double(settings.min_p, 0.0, 1.0, 0.01)
        self.repeat_penalty = self._double(settings.repeat_penalty, 0.5, 2.0, 0.05)
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 1000)
        self.top_k.setValue(settings.top_k)
        self.limit_tokens = QCheckBox("Stop after")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 1_000_000)
        self.max_tokens.setSuffix(" tokens")
        self.max_tokens.setValue(settings.max_tokens or 1024)
        self.limit_tokens.setChecked(settings.max_tokens is not None)
        self.max_tokens.setEnabled(settings.max_tokens is not None)
        self.limit_tokens.toggled.connect(self.max_tokens.setEnabled)
        self.fixed_seed = QCheckBox("Fixed seed")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(settings.seed or 0)
        self.fixed_seed.setChecked(settings.seed is not None)
        self.seed.setEnabled(settings.seed is not None)
        self.fixed_seed.toggled.connect(self.seed.setEnabled)

        form = QFormLayout(self)
        form.addRow("System prompt", self.system_prompt)
        form.addRow("Temperature", self.temperature)
        form.addRow("Top P", self.top_p)
        form.addRow("Top K", self.top_k)
        form.addRow("Min P", self.min_p)
        form.addRow("Repeat penalty", self.repeat_penalty)
        form.addRow(self.limit_tokens, self.max_tokens)
        form.addRow(self.fixed_seed, self.seed)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        defaults = buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        defaults.clicked.connect(self._on_defaults_clicked)
        form.addRow(buttons)
        self.resize(460, 420)

    @staticmethod
    def _double(value: float, low: float, high: float, step: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox()
        box.setRange(low, high)
        box.setSingleStep(step)
        box.setDecimals(2)
        box.setValue(value)
        return box

    def settings(self) -> ChatSettings:
        return ChatSettings(
            system_prompt=self.system_prompt.toPlainText().strip(),
            temperature=self.temperature.value(),
            top_p=self.top_p.value(),
            top_k=self.top_k.value(),
            min_p=self.min_p.value(),
            repeat_penalty=self.repeat_penalty.value(),
            max_tokens=self.max_tokens.value() if self.limit_tokens.isChecked() else None,
            seed=self.seed.value() if self.fixed_seed.isChecked() else None,
            model=self._settings.model,  # chosen with the model picker, not here
        )

    def _on_defaults_clicked(self) -> None:
        keep = self.system_prompt.toPlainText()
        fresh = ChatSettingsDialog(ChatSettings(system_prompt=keep))
        for name in ("temperature", "top_p", "min_p", "repeat_penalty", "top_k"):
            getattr(self, name).setValue(getattr(fresh, name).value())
        self.limit_tokens.setChecked(False)
        self.fixed_seed.setChecked(False)
        fresh.deleteLater()
