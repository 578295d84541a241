"""Which model a conversation talks to: the model loaded last, or one the user picks from the
loaded models and the library (a model not loaded is loaded when the conversation asks it)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QWidget

from app.core.library.model import LibraryModel
from app.gui.desktop import Desktop

DEFAULT_CHOICE = "Model loaded last"


class ModelPicker(QComboBox):
    model_chosen = Signal(object)  # str | None (None: the model loaded last)

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chatModelPicker")
        self.setToolTip("The model this conversation talks to")
        self._desktop = desktop
        self._library: list[str] = []
        self._chosen: str | None = None
        self.activated.connect(self._on_activated)
        desktop.pool_events.changed.connect(self._fill)
        self.refresh_library()

    def refresh_library(self) -> None:
        self._desktop.bridge.run(
            self._desktop.services.library.models, self._on_library_listed, owner=self
        )

    def show_choice(self, name: str | None) -> None:
        """Show ``name`` as chosen without telling anyone (a conversation was opened)."""
        self._chosen = name
        self._fill()

    def _on_library_listed(self, models: list[LibraryModel]) -> None:
        self._library = [m.name for m in models]
        self._fill()

    def _fill(self) -> None:
        loaded = [m.name for m in self._desktop.services.pool.models()]
        names = loaded + [n for n in self._library if n not in loaded]
        if self._chosen is not None and self._chosen not in names:
            names.append(self._chosen)  # a model since removed still shows what was chosen
        self.blockSignals(True)
        self.clear()
        self.addItem(DEFAULT_CHOICE, None)
        for name in names:
            self.addItem(f"{name} (loaded)" if name in loaded else name, name)
        self.setCurrentIndex(max(self.findData(self._chosen), 0))
        self.blockSignals(False)

    def _on_activated(self, index: int) -> None:
        self._chosen = self.itemData(index)
        self.model_chosen.emit(self._chosen)
