"""The Library page: every GGUF on disk (Homefire's and other tools'), load, delete, show."""

from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.catalog.load_plan import LoadFacts, plan_load
from app.core.hardware.profile import HardwareProfile
from app.core.library.model import LibraryModel
from app.core.library.sources.removal import remove_model
from app.core.sizes import format_size
from app.gui.desktop import Desktop
from app.gui.errors import show_error
from app.gui.library.load_dialog import LoadDialog
from app.gui.library.loaded_models import LoadedModelsPanel
from app.gui.model_loader import LoadedModel

SOURCE_NAMES = {
    "starter": "Starter (PyPI)",
    "homefire": "Homefire",
    "huggingface-cache": "Hugging Face cache",
    "lm-studio": "LM Studio",
    "ollama": "Ollama",
    "folder": "Your folder",
    "file": "File",
}
COLUMNS = ("Model", "Quant", "Size", "From", "Location")


class LibraryPage(QWidget):
    load_dialog_opened = Signal(object)  # LoadDialog

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("libraryPage")
        self._desktop = desktop
        self._models: list[LibraryModel] = []

        title = QLabel("<h2>Library</h2>")
        self.summary = QLabel("Looking for models…")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.open_load_dialog())

        self.load_button = QPushButton("Load…")
        self.load_button.clicked.connect(self.open_load_dialog)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self.show_button = QPushButton("Show in folder")
        self.show_button.clicked.connect(self._on_show_button_clicked)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        buttons = QHBoxLayout()
        for button in (self.load_button, self.delete_button, self.show_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.refresh_button)

        self.loaded = QLabel("No model loaded.")
        self.loaded.setObjectName("loadedModel")
        self.loaded.setWordWrap(True)
        self.loaded.setTextFormat(Qt.TextFormat.RichText)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.addWidget(title)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.loaded)
        self.loaded_models = LoadedModelsPanel(desktop, self)
        layout.addWidget(self.loaded_models)

        loader = desktop.loader
        loader.loading_started.connect(self._on_loader_loading_started)
        loader.model_loaded.connect(self._on_loader_model_loaded)
        loader.loading_failed.connect(self._on_loader_loading_failed)
        self._update_buttons()
        self.refresh()

    # -- the list ------------------------------------------------------------------------------

    def refresh(self) -> None:
        self.refresh_button.setEnabled(False)
        self._desktop.bridge.run(
            self._desktop.services.library.models,
            self._on_models_listed,
            self._on_models_failed,
            owner=self,
        )

    def _on_models_listed(self, models: list[LibraryModel]) -> None:
        self.refresh_button.setEnabled(True)
        self._models = models
        loaded = self._desktop.loader.current
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            name = model.name
            if loaded is not None and loaded.library_model.path == model.path:
                name = f"● {name}"
            cells = (
                name,
                model.quant or "?",
                format_size(model.size_bytes),
                SOURCE_NAMES.get(model.source, model.source),
                str(model.path.parent),
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(model.path))
                if column == 2:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, column, item)
        total = sum(m.size_bytes for m in models)
        self.summary.setText(
            f"{len(models)} model{'s' if len(models) != 1 else ''} on this machine, {format_size(total)}. "
            "Homefire lists what other tools downloaded too; it deletes only its own."
        )
        if models and not self.table.selectedItems():
            self.table.selectRow(0)
        self._update_buttons()

    def _on_models_failed(self, exc: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        self.summary.setText("The library could not be read.")
        show_error(self, exc)

    def selected(self) -> LibraryModel | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._models):
            return None
        return self._models[rows[0].row()]

    def select(self, name: str) -> None:
        for row, model in enumerate(self._models):
            if model.name == name:
                self.table.selectRow(row)

    def _update_buttons(self) -> None:
        model = self.selected()
        busy = self._desktop.loader.loading is not None
        self.load_button.setEnabled(model is not None and not busy)
        self.show_button.setEnabled(model is not None)
        self.delete_button.setEnabled(model is not None and model.owned)
        self.delete_button.setToolTip(
            ""
            if model is None or model.owned
            else "Homefire deletes only models it downloaded; this one belongs to "
            f"{SOURCE_NAMES.get(model.source, model.source)}."
        )

    # -- load ----------------------------------------------------------------------------------

    def open_load_dialog(self) -> None:
        model = self.selected()
        if model is None or self._desktop.loader.loading is not None:
            return
        self.load_button.setEnabled(False)
        self.loaded.setText(f"Reading {model.name}…")
        services = self._desktop.services
        n_ctx = services.settings.engine.n_ctx

        def with_profile(profile: HardwareProfile) -> None:
            def work() -> LoadFacts:
                path = services.library.local_path(model)  # joins the starter model's parts
                correction = services.fit_feedback.calibration.correction()
                return plan_load(path, profile, n_ctx, correction, model.quant)

            self._desktop.bridge.run(
                work,
                lambda facts: self._on_facts_gathered(model, facts),
                self._on_facts_failed,
                owner=self,
            )

        self._desktop.bridge.watch(
            self._desktop.hardware_profile(), with_profile, self._on_facts_failed, owner=self
        )

    def _on_facts_gathered(self, model: LibraryModel, facts: LoadFacts) -> None:
        self._show_loaded()
        self._update_buttons()
        workers = self._desktop.services.settings.engine.workers
        dialog = LoadDialog(model, facts, self, workers=workers)
        dialog.accepted.connect(
            lambda: self._desktop.loader.load(model, dialog.options(), dialog.current_estimate)
        )
        dialog.finished.connect(dialog.deleteLater)
        self.load_dialog_opened.emit(dialog)
        dialog.open()

    def _on_facts_failed(self, exc: BaseException) -> None:
        self._show_loaded()
        self._update_buttons()
        show_error(self, exc)

    def _on_loader_loading_started(self, name: str) -> None:
        self.loaded.setText(f"Loading {name}…")
        self._update_buttons()

    def _on_loader_model_loaded(self, _loaded: LoadedModel) -> None:
        self._show_loaded()
        self.refresh()

    def _on_loader_loading_failed(self, exc: BaseException) -> None:
        self._show_loaded()
        self._update_buttons()
        show_error(self, exc)

    def _show_loaded(self) -> None:
        loaded = self._desktop.loader.current
        if loaded is None:
            self.loaded.setText("No model loaded.")
            return
        info = loaded.info
        measured = (
            f"measured <b>{format_size(info.rss_growth_bytes)}</b> of RAM growth at load"
            if info.rss_growth_bytes
            else "memory not measured"
        )
        estimated = (
            f", estimated {format_size(loaded.estimate.ram_after_load_bytes)} "
            f"({loaded.estimate.basis})"
            if loaded.estimate is not None
            else ""
        )
        self.loaded.setText(
            f"<b>Loaded:</b> {info.model_id} · context {info.n_ctx:,} tokens · "
            f"loaded in {info.load_s:.1f} s · {measured}{estimated}"
        )

    # -- delete and show -----------------------------------------------------------------------

    def _on_delete_button_clicked(self) -> None:
        model = self.selected()
        if model is None or not model.owned:
            return
        if self._desktop.services.pool.find(model.name) is not None:
            QMessageBox.information(
                self, "Delete model", "This model is loaded. Unload it first (below the list)."
            )
            return
        answer = QMessageBox.question(
            self,
            "Delete model",
            f"Delete {model.name} ({format_size(model.size_bytes)}) from disk?\n{model.path}",
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        self._desktop.bridge.run(
            lambda: remove_model(model), lambda _paths: self.refresh(), self._on_facts_failed, self
        )

    def _on_show_button_clicked(self) -> None:
        model = self.selected()
        if model is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(model.path.parent)))
