"""The Downloads page: the queue with progress, speed, ETA, pause/resume/cancel, errors in words.

The manager's workers publish progress on their own threads; this page reads each item's latest
progress (a locked copy) a few times a second instead of relaying every chunk, so a fast
download never floods the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.downloads.manager import (
    DownloadItem,
    DownloadRequest,
    DownloadResult,
    DownloadState,
)
from app.core.errors import AppError
from app.core.sizes import format_size
from app.gui.desktop import Desktop
from app.gui.errors import show_error, user_message

REFRESH_MS = 250
COLUMNS = ("Model", "Progress", "Done", "Speed", "Time left", "Status")
ACTIVE = (
    DownloadState.QUEUED,
    DownloadState.RUNNING,
    DownloadState.RETRYING,
    DownloadState.VERIFYING,
)


def eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds} s"


class DownloadsPage(QWidget):
    download_finished = Signal(object)  # DownloadResult
    download_failed = Signal(object)  # the error

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("downloadsPage")
        self._desktop = desktop
        self._rows: list[DownloadItem] = []
        self._shown: dict[int, tuple[str, int]] = {}

        self.empty = QLabel(
            "Nothing downloading. Pick a model on the Discover page; downloads resume where they "
            "stopped, even after a restart."
        )
        self.empty.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("downloadQueue")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setShowGrid(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)

        self.pause_button = QPushButton("Pause")
        self.pause_button.clicked.connect(self._on_pause_button_clicked)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self._on_resume_button_clicked)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._on_cancel_button_clicked)
        buttons = QHBoxLayout()
        for button in (self.pause_button, self.resume_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.addWidget(QLabel("<h2>Downloads</h2>"))
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self._refresh)
        self._update_buttons()

    def start(self, request: DownloadRequest) -> DownloadItem:
        item = self._desktop.services.downloads.submit(request)
        self._rows.append(item)
        self._add_row(item)
        self._desktop.bridge.watch(
            item.future, self._on_item_done, self._on_item_failed, owner=self
        )
        self._timer.start()
        self._refresh()
        return item

    @property
    def items(self) -> list[DownloadItem]:
        return list(self._rows)

    def _add_row(self, item: DownloadItem) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        files = item.request.files
        name = f"{item.request.repo_id} · {files[0].path.rsplit('/', 1)[-1]}"
        if len(files) > 1:
            name += f" (+{len(files) - 1} parts)"
        self.table.setItem(row, 0, QTableWidgetItem(name))
        bar = QProgressBar()
        bar.setRange(0, 1000)
        self.table.setCellWidget(row, 1, bar)
        for column in range(2, len(COLUMNS)):
            self.table.setItem(row, column, QTableWidgetItem(""))
        self.empty.hide()
        self.table.selectRow(row)

    def _refresh(self) -> None:
        active = False
        for row, item in enumerate(self._rows):
            progress = item.progress()
            key = (progress.state.value, progress.bytes_done)
            active = active or progress.state in ACTIVE
            if self._shown.get(item.item_id) == key:
                continue
            self._shown[item.item_id] = key
            bar = self.table.cellWidget(row, 1)
            if isinstance(bar, QProgressBar):
                bar.setValue(round(progress.fraction * 1000))
                bar.setFormat(f"{progress.fraction:.0%}")
            running = progress.state in (DownloadState.RUNNING, DownloadState.RETRYING)
            cells = {
                2: f"{format_size(progress.bytes_done)} of {format_size(progress.total_bytes)}",
                3: f"{format_size(progress.speed_bps)}/s"
                if running and progress.speed_bps
                else "–",
                4: eta_text(progress.eta_s) if running else "–",
                5: progress.message or progress.state.value,
            }
            for column, text in cells.items():
                cell = self.table.item(row, column)
                if cell is not None:
                    cell.setText(text)
                    if column in (3, 4):
                        cell.setToolTip("measured over the last few seconds")
        if not active:
            self._timer.stop()
        self._update_buttons()

    def _on_item_done(self, result: DownloadResult) -> None:
        self._refresh()
        self.download_finished.emit(result)

    def _on_item_failed(self, exc: BaseException) -> None:
        self._refresh()
        row = next(
            (r for r, item in enumerate(self._rows) if item.future.done()
             and item.future.exception() is exc),
            None,
        )  # fmt: skip
        cell = self.table.item(row, 5) if row is not None else None
        if cell is not None:
            cell.setText(user_message(exc))
        self.download_failed.emit(exc)

    def selected(self) -> DownloadItem | None:
        rows = self.table.selectionModel().selectedRows()
        return self._rows[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        item = self.selected()
        state = item.progress().state if item else None
        self.pause_button.setEnabled(state in ACTIVE)
        self.resume_button.setEnabled(state == DownloadState.PAUSED)
        self.cancel_button.setEnabled(state in (*ACTIVE, DownloadState.PAUSED))

    def _on_pause_button_clicked(self) -> None:
        item = self.selected()
        if item is not None:
            self._desktop.services.downloads.pause(item)
            self._timer.start()

    def _on_resume_button_clicked(self) -> None:
        item = self.selected()
        if item is not None:
            try:
                self._desktop.services.downloads.resume(item)
            except AppError as exc:
                show_error(self, exc)
            self._timer.start()

    def _on_cancel_button_clicked(self) -> None:
        item = self.selected()
        if item is not None:
            self._desktop.services.downloads.cancel(item)
            self._timer.start()

    def shutdown(self) -> None:
        self._timer.stop()
