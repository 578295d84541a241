"""The models loaded now: memory measured over each load, idle time, a pin and Unload per model.

A thin view over the model pool: it redraws when the pool says something changed (relayed to
the GUI thread) and every few seconds for the idle times; pin and unload go straight to the pool.
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import AppError, Cancelled
from app.core.pool.pool import LoadedModel
from app.core.sizes import format_size
from app.gui.desktop import Desktop
from app.gui.errors import show_error

COLUMNS = ("Loaded model", "Context", "Memory", "Idle", "Pinned", "")
IDLE_REFRESH_MS = 5000


def idle_text(model: LoadedModel, now: datetime) -> str:
    if model.busy:
        return f"serving {model.busy}"
    seconds = max(int((now - model.last_used).total_seconds()), 0)
    idle = f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
    if model.expires_at is None:
        return idle
    left = max(int((model.expires_at - now).total_seconds()), 0)
    return (
        f"{idle} (unloads in {left // 60} min)" if left >= 60 else f"{idle} (unloads in {left} s)"
    )


class LoadedModelsPanel(QWidget):
    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loadedModels")
        self._desktop = desktop
        self.models: list[LoadedModel] = []
        self.total = QLabel()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.total)
        layout.addWidget(self.table)
        desktop.pool_events.changed.connect(self.refresh)
        self._timer = QTimer(self)
        self._timer.setInterval(IDLE_REFRESH_MS)
        self._timer.timeout.connect(self._tick)
        self._timer.start()
        self.refresh()

    def _tick(self) -> None:
        if self.isVisible():  # idle times only matter to someone looking
            self.refresh()

    def refresh(self) -> None:
        try:
            self.models = self._desktop.services.pool.models()
        except Cancelled:  # Homefire is closing: nothing more to show
            self._timer.stop()
            return
        now = datetime.now(UTC)
        self.table.setRowCount(len(self.models))
        for row, model in enumerate(self.models):
            kind = "measured" if model.memory_measured else "estimated"
            cells = (
                model.name,
                f"{model.info.n_ctx:,}",
                f"{format_size(model.memory_bytes)} ({kind})",
                idle_text(model, now),
            )
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
            pin = QCheckBox()
            pin.setChecked(model.pinned)
            pin.setToolTip("A pinned model is never unloaded to make room or for being idle")
            pin.toggled.connect(lambda checked, name=model.name: self._pin(name, checked))
            self.table.setCellWidget(row, 4, pin)
            unload = QPushButton("Unload")
            unload.setToolTip("Unload now, or as soon as its running requests end")
            unload.clicked.connect(lambda _checked=False, name=model.name: self.unload(name))
            self.table.setCellWidget(row, 5, unload)
        self._fit_height()
        total = sum(m.memory_bytes for m in self.models)
        self.total.setText(
            f"<b>Loaded now:</b> {len(self.models)} model{'s' if len(self.models) != 1 else ''}"
            f", {format_size(total)}"
            if self.models
            else "<b>Loaded now:</b> none. Requests from editors load models as they name them."
        )
        self.total.setTextFormat(Qt.TextFormat.RichText)

    def _fit_height(self) -> None:
        """As tall as its rows (one at least): the library list above keeps the page's room."""
        height = self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
        height += sum(self.table.rowHeight(row) for row in range(self.table.rowCount()))
        if not self.table.rowCount():
            height += self.table.verticalHeader().defaultSectionSize()
        self.table.setFixedHeight(height + 2)

    def unload(self, name: str) -> None:
        self._desktop.bridge.watch(
            self._desktop.services.pool.unload(name),
            lambda _done: self.refresh(),
            lambda exc: show_error(self, exc),
            owner=self,
        )

    def _pin(self, name: str, pinned: bool) -> None:
        try:
            self._desktop.services.pool.pin(name, pinned)
        except AppError as exc:  # unloaded meanwhile
            show_error(self, exc)

    def close_timer(self) -> None:
        self._timer.stop()
