"""The Library page's Loaded table: every model the pool holds, its memory, idle time and pin.

Rows follow the pool live (its listener relayed as a Qt signal); idle times and expiry tick on
a timer. Unload and Pin act on the pool, so the server's requests see the same models.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.core.pool.pool import LoadedModel
from app.core.pool.summary import expiry_text, idle_text, memory_text
from app.gui.bridge import PoolRelay
from app.gui.desktop import Desktop
from app.gui.errors import show_error

COLUMNS = ("Model", "Context", "Memory", "Idle", "Unloads", "Pin", "")
IDLE_REFRESH_MS = 1000
MAX_ROWS_SHOWN = 4  # more scroll
_IDLE, _EXPIRY, _PIN, _UNLOAD = 3, 4, 5, 6
W = TypeVar("W", bound=QWidget)


class LoadedModelsTable(QTableWidget):
    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.setObjectName("loadedModels")
        self._desktop = desktop
        self._models: list[LoadedModel] = []
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().hide()
        self.setShowGrid(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

        self._relay = PoolRelay(desktop.services.pool, self)
        self._relay.pool_changed.connect(self.refresh)
        self._timer = QTimer(self)
        self._timer.setInterval(IDLE_REFRESH_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()
        self.refresh()

    @property
    def models(self) -> list[LoadedModel]:
        return list(self._models)

    def names(self) -> list[str]:
        return [m.name for m in self._models]

    def pin_box(self, name: str) -> QCheckBox:
        return self._cell(name, _PIN, QCheckBox)

    def unload_button(self, name: str) -> QPushButton:
        return self._cell(name, _UNLOAD, QPushButton)

    def refresh(self) -> None:
        """Rebuild the rows from what the pool holds now."""
        models = self._desktop.services.pool.models()
        self._models = models
        self.setRowCount(len(models))
        for row, model in enumerate(models):
            cells = (model.name, f"{model.info.n_ctx:,}", memory_text(model))
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(model.info.path))
                if column in (1, 2):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.setItem(row, column, item)
            self.setCellWidget(row, _PIN, self._pin_widget(model))
            self.setCellWidget(row, _UNLOAD, self._unload_widget(model))
        self._show_times()
        self.setFixedHeight(self._height_for(len(models)))  # the library list takes the rest

    def close_relay(self) -> None:
        self._relay.close()
        self._timer.stop()

    # -- cells ---------------------------------------------------------------------------------

    def _pin_widget(self, model: LoadedModel) -> QWidget:
        box = QCheckBox()
        box.setChecked(model.pinned)
        box.setToolTip("A pinned model is never unloaded for being idle or to make room")
        box.toggled.connect(lambda on, name=model.name: self._on_pin_toggled(name, on))
        return _centered(box)

    def _unload_widget(self, model: LoadedModel) -> QWidget:
        button = QPushButton("Unload")
        button.setToolTip(
            "Unload now; a model answering a request is unloaded when its last request ends"
        )
        button.clicked.connect(lambda _=False, name=model.name: self._on_unload_clicked(name))
        return _centered(button)

    def _cell(self, name: str, column: int, kind: type[W]) -> W:
        row = self.names().index(name)
        holder = self.cellWidget(row, column)
        found = holder.findChild(kind)
        assert found is not None
        return found

    def _show_times(self) -> None:
        now = datetime.now(UTC)
        for row, model in enumerate(self._models):
            self.setItem(row, _IDLE, QTableWidgetItem(idle_text(model, now)))
            self.setItem(row, _EXPIRY, QTableWidgetItem(expiry_text(model, now)))

    def _height_for(self, rows: int) -> int:
        shown = max(min(rows, MAX_ROWS_SHOWN), 1)
        return (
            self.horizontalHeader().height()
            + shown * self.verticalHeader().defaultSectionSize()
            + 4
        )

    # -- actions -------------------------------------------------------------------------------

    def _on_timer_timeout(self) -> None:
        models = self._desktop.services.pool.models()
        if [m.name for m in models] != self.names():
            self.refresh()
            return
        self._models = models  # busy and last-used change without a pool notice
        self._show_times()

    def _on_pin_toggled(self, name: str, pinned: bool) -> None:
        try:
            self._desktop.services.pool.pin(name, pinned)
        except Exception as exc:  # noqa: BLE001 - unloaded meanwhile: say so, show the truth
            show_error(self, exc)
            self.refresh()

    def _on_unload_clicked(self, name: str) -> None:
        self.unload_button(name).setEnabled(False)
        done = self._desktop.services.pool.unload(name)
        # The pool's notice refreshes the rows; a busy model stays until its requests end.
        self._desktop.bridge.watch(done, lambda _none: self.refresh(), self._on_unload_failed, self)

    def _on_unload_failed(self, exc: BaseException) -> None:
        self.refresh()
        show_error(self, exc)


def _centered(widget: QWidget) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(4, 0, 4, 0)
    layout.addWidget(widget, 0, Qt.AlignmentFlag.AlignCenter)
    return holder
