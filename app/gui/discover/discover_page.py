"""The Discover page: suggestions for this machine, the catalog and Hub search, variants with fit
verdicts, expected speed and size, and a download button.

Every figure here is an estimate (from the catalog or a file's header, and the hardware profile);
the page says so. Hub calls run on a worker; offline, the page says that in words.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.catalog.calibration import Correction
from app.core.catalog.catalog import CatalogEntry, catalog_variants, load_catalog
from app.core.catalog.cluster import Cluster, ClusterMember, ClusterVerdict, recommend_cluster
from app.core.catalog.hub import HubRepo
from app.core.catalog.recommend import Variant, Verdict, recommend
from app.core.catalog.remote_gguf import hub_variant_for, variants_for_repo
from app.core.catalog.suggestions import SUGGESTION_CTX, Suggestion, suggest, verdicts_for
from app.core.downloads.manager import DownloadRequest
from app.core.errors import RepoNotFound
from app.core.hardware.profile import HardwareProfile
from app.core.hardware.profiles import list_profiles
from app.core.sizes import format_size
from app.gui.desktop import Desktop
from app.gui.errors import show_error, user_message

COLUMNS = ("", "Quant", "Size", "Runs as", "Speed", "Quality loss", "Why", "Across machines")
CLUSTER_COLUMN = 7
ROLE = Qt.ItemDataRole.UserRole
PLAN_COUNTS = (1, 2, 3)  # workers of one profile to plan with


class DiscoverPage(QWidget):
    download_requested = Signal(object)  # DownloadRequest
    verdicts_shown = Signal(str)  # the model shown

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("discoverPage")
        self._desktop = desktop
        self._profile: HardwareProfile | None = None
        self._correction: Correction | None = None
        self._verdicts: list[Verdict] = []
        self._variants: list[Variant] = []
        self._cluster_verdicts: list[ClusterVerdict] = []
        # The workers in settings, as they reported themselves (or why they could not).
        self._live_workers: list[ClusterMember] = []
        self._workers_problem: str | None = None
        self._repo: str | None = None
        self._entries = load_catalog()

        self.suggestions = QGroupBox("Suggested for this machine")
        self.suggestions.setObjectName("suggestions")
        self._suggestion_row = QHBoxLayout(self.suggestions)
        self._suggestion_row.addWidget(QLabel("Looking at this machine…"))

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search the Hugging Face Hub for GGUF models…")
        self.search.returnPressed.connect(self._on_search_return_pressed)
        self.models = QListWidget()
        self.models.setObjectName("discoverModels")
        self.models.currentItemChanged.connect(self._on_models_current_item_changed)
        self.search_state = QLabel()
        self.search_state.setWordWrap(True)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.search)
        left_layout.addWidget(self.search_state)
        left_layout.addWidget(self.models, 1)

        self.title = QLabel()
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        # Workers to plan with: planning profiles here; live workers once they report memory.
        self.plan_with = QComboBox()
        self.plan_with.setObjectName("planCluster")
        self.plan_with.addItem("This machine only", None)
        workers = desktop.services.settings.engine.workers
        if workers:
            self.plan_with.addItem(f"+ the workers in settings ({len(workers)})", ("workers",))
        for profile in list_profiles(desktop.services.paths):
            for count in PLAN_COUNTS:
                self.plan_with.addItem(f"+ {count} × {profile.name}", (count, profile.name))
        if workers:  # configured workers are planned with unless the user picks otherwise
            self.plan_with.setCurrentIndex(1)
        self.plan_with.currentIndexChanged.connect(self._on_plan_with_current_index_changed)
        self.cluster_verdict = QLabel()
        self.cluster_verdict.setObjectName("clusterVerdict")
        self.cluster_verdict.setWordWrap(True)
        self.cluster_verdict.hide()
        plan_row = QHBoxLayout()
        plan_row.addWidget(QLabel("Plan across:"))
        plan_row.addWidget(self.plan_with, 1)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("variants")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setShowGrid(False)
        self.table.horizontalHeader().setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnHidden(CLUSTER_COLUMN, True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.basis = QLabel(
            "<small>Sizes from the catalog or the Hub; memory, speed and fit are estimated "
            f"for {SUGGESTION_CTX:,} tokens of context on this machine.</small>"
        )
        self.basis.setWordWrap(True)
        self.download_button = QPushButton("Download")
        self.download_button.setObjectName("downloadVariant")
        self.download_button.clicked.connect(self._on_download_button_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.basis, 1)
        buttons.addWidget(self.download_button)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.title)
        right_layout.addLayout(plan_row)
        right_layout.addWidget(self.cluster_verdict)
        right_layout.addWidget(self.table, 1)
        right_layout.addLayout(buttons)

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setSizes([280, 700])
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.addWidget(QLabel("<h2>Discover</h2>"))
        layout.addWidget(self.suggestions)
        layout.addWidget(splitter, 1)

        for entry in self._entries:
            item = QListWidgetItem(f"{entry.name}  ·  {entry.params_b:g}B")
            item.setData(ROLE, ("catalog", entry.id))
            item.setToolTip(entry.use)
            self.models.addItem(item)
        self._update_buttons()
        desktop.bridge.watch(
            desktop.hardware_profile(), self._on_profile_detected, self._on_failed, owner=self
        )

    # -- machine and suggestions ---------------------------------------------------------------

    def _on_profile_detected(self, profile: HardwareProfile) -> None:
        self._profile = profile
        services = self._desktop.services
        calibration = services.fit_feedback.calibration
        entries = self._entries

        def work() -> tuple[Correction | None, list[Suggestion]]:
            correction = calibration.correction()
            return correction, suggest(entries, profile, correction)

        self._desktop.bridge.run(work, self._on_suggested, self._on_failed, owner=self)
        workers = services.settings.engine.workers
        if workers:
            self._desktop.bridge.run(
                lambda: services.worker_members(workers),
                self._on_workers_probed,
                self._on_workers_failed,
                owner=self,
            )

    def _on_workers_probed(self, members: list[ClusterMember]) -> None:
        self._live_workers, self._workers_problem = members, None
        self._show_cluster()

    def _on_workers_failed(self, exc: BaseException) -> None:
        self._live_workers, self._workers_problem = [], user_message(exc)
        self._show_cluster()

    def _on_suggested(self, found: tuple[Correction | None, list[Suggestion]]) -> None:
        self._correction, suggestions = found
        while self._suggestion_row.count():
            taken = self._suggestion_row.takeAt(0)
            widget = taken.widget() if taken else None
            if widget is not None:
                widget.deleteLater()
        if not suggestions:
            self._suggestion_row.addWidget(
                QLabel("No catalog model runs at a readable speed here; the starter model does.")
            )
        for suggestion in suggestions:
            self._suggestion_row.addWidget(self._card(suggestion), 1)
        if self.models.currentRow() < 0 and self.models.count():
            self.models.setCurrentRow(0)

    def _card(self, suggestion: Suggestion) -> QWidget:
        card = QWidget()
        card.setObjectName("suggestionCard")
        text = QLabel(
            f"<b>{suggestion.entry.name}</b> ({suggestion.entry.params_b:g}B)<br>"
            f"<small>{suggestion.reason}</small>"
        )
        text.setWordWrap(True)
        show = QPushButton("Show")
        show.clicked.connect(lambda _=False, e=suggestion.entry: self._select_catalog(e.id))
        row = QHBoxLayout(card)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(text, 1)
        row.addWidget(show)
        return card

    def _select_catalog(self, entry_id: str) -> None:
        for row in range(self.models.count()):
            if self.models.item(row).data(ROLE) == ("catalog", entry_id):
                self.models.setCurrentRow(row)

    # -- a model's variants --------------------------------------------------------------------

    def _on_models_current_item_changed(self, item: QListWidgetItem | None, _old: object) -> None:
        if item is None or self._profile is None:
            return
        kind, key = item.data(ROLE)
        profile, correction = self._profile, self._correction
        if kind == "catalog":
            entry = next(e for e in self._entries if e.id == key)
            self._repo = entry.repo
            self._show_title(entry)
            self._variants = catalog_variants(entry)
            self._show_verdicts(entry.name, verdicts_for(entry, profile, correction))
            return
        self._repo = key
        self.title.setText(f"<h3>{key}</h3>Reading each variant's header from the Hub…")
        self.table.setRowCount(0)
        services = self._desktop.services

        def work() -> tuple[list[Variant], list[Verdict]]:
            variants = variants_for_repo(key, services.hub)
            return variants, recommend(profile, variants, SUGGESTION_CTX, correction=correction)

        self._desktop.bridge.run(
            work, lambda found: self._on_hub_variants(key, *found), self._on_hub_failed, self
        )

    def _on_hub_variants(self, repo: str, variants: list[Variant], verdicts: list[Verdict]) -> None:
        self._variants = variants
        self._show_verdicts(repo, verdicts)

    def _show_title(self, entry: CatalogEntry) -> None:
        active = f", {entry.active_params_b:g}B active (mixture of experts)" if entry.is_moe else ""
        self.title.setText(
            f"<h3>{entry.name}</h3>{entry.use}<br><small>{entry.params_b:g}B parameters{active}"
            f" · licence: {entry.license} · {entry.repo or 'no GGUF repo known'}</small>"
        )

    def _show_verdicts(self, name: str, verdicts: list[Verdict]) -> None:
        self._verdicts = verdicts
        self.table.setRowCount(len(verdicts))
        pick_row = 0
        for row, v in enumerate(verdicts):
            estimated_size = v.variant.size_basis.startswith("estimated")
            size = ("~" if estimated_size else "") + format_size(v.variant.file_size or 0)
            speed = f"~{v.tokens_per_s:.0f} tok/s" if v.tokens_per_s else "–"
            cells = ("★" if v.recommended else "", v.variant.quant, size, v.label, speed,
                     v.quality.band, v.reason)  # fmt: skip
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                if column == 4:
                    cell.setToolTip(v.speed_basis or "estimated")
                if column == 2:
                    cell.setToolTip(v.variant.size_basis)
                if not v.fits:
                    cell.setForeground(Qt.GlobalColor.gray)
                self.table.setItem(row, column, cell)
            if v.recommended:
                pick_row = row
        self._show_cluster()
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)
        if verdicts:
            self.table.selectRow(pick_row)
        self._update_buttons()
        self.verdicts_shown.emit(name)

    # -- planning across machines --------------------------------------------------------------

    def planning_cluster(self) -> Cluster | None:
        """This machine plus the workers chosen to plan with, or None for this machine only."""
        choice = self.plan_with.currentData()
        if choice is None or self._profile is None:
            return None
        here = ClusterMember.of_profile(self._profile, "here")
        link = self._desktop.services.settings.engine.worker_link_gbps
        if choice == ("workers",):
            return Cluster(here, tuple(self._live_workers), link) if self._live_workers else None
        count, name = choice
        worker = next(
            (p for p in list_profiles(self._desktop.services.paths) if p.name == name), None
        )
        if worker is None:  # a user profile removed since the list was filled
            return None
        member = ClusterMember.of_profile(worker, "worker")
        return Cluster(here, (member,) * count, link)

    def _on_plan_with_current_index_changed(self, _index: int) -> None:
        self._show_cluster()
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(6, QHeaderView.ResizeMode.Stretch)

    def _show_cluster(self) -> None:
        """The cluster's verdict beside each variant's verdict for this machine."""
        cluster = self.planning_cluster()
        self.table.setColumnHidden(CLUSTER_COLUMN, cluster is None)
        self._cluster_verdicts = []
        if self.plan_with.currentData() == ("workers",) and cluster is None:
            waiting = "Asking the workers in settings for their memory…"
            self.cluster_verdict.setText(self._workers_problem or waiting)
            self.cluster_verdict.setVisible(True)
            return
        self.cluster_verdict.setVisible(cluster is not None)
        if cluster is None or not self._variants:
            self.cluster_verdict.setText("")
            return
        planned = recommend_cluster(self._variants, SUGGESTION_CTX, cluster)
        self._cluster_verdicts = planned
        by_quant = {v.variant.quant: v for v in planned}
        for row, verdict in enumerate(self._verdicts):
            found = by_quant.get(verdict.variant.quant)
            text = tip = ""
            if found is not None:
                plan = found.plan
                speed = f", ~{plan.tokens_per_s:.0f} tok/s" if plan.tokens_per_s else ""
                text = {"fits": "fits", "tight": "fits, tight", "no_fit": "does not fit"}[plan.kind]
                text = ("★ " if found.recommended else "") + text + speed
                tip = f"{plan.text}\nspeed: {plan.speed_basis}"
            cell = QTableWidgetItem(text)
            cell.setToolTip(tip)
            self.table.setItem(row, CLUSTER_COLUMN, cell)
        pick = next((v for v in planned if v.recommended), None)
        machines = f"{len(cluster.members)} machines"
        if pick is None:
            self.cluster_verdict.setText(f"Across {machines}: no variant fits (estimated).")
        else:
            self.cluster_verdict.setText(
                f"Across {machines}: {pick.variant.quant} {pick.plan.text} (estimated)."
            )

    def selected_verdict(self) -> Verdict | None:
        rows = self.table.selectionModel().selectedRows()
        return self._verdicts[rows[0].row()] if rows and self._verdicts else None

    def _update_buttons(self) -> None:
        verdict = self.selected_verdict()
        self.download_button.setEnabled(verdict is not None and self._repo is not None)
        if verdict is not None and self._repo:
            self.download_button.setText(f"Download {verdict.variant.quant}")
        else:
            self.download_button.setText("Download")

    # -- search and download -------------------------------------------------------------------

    def _on_search_return_pressed(self) -> None:
        query = self.search.text().strip()
        if not query:
            return
        self.search_state.setText(f"Searching the Hub for “{query}”…")
        services = self._desktop.services
        self._desktop.bridge.run(
            lambda: services.hub.search(query), self._on_searched, self._on_hub_failed, owner=self
        )

    def _on_searched(self, repos: list[HubRepo]) -> None:
        for row in reversed(range(self.models.count())):
            if self.models.item(row).data(ROLE)[0] == "hub":
                self.models.takeItem(row)
        for repo in repos:
            item = QListWidgetItem(f"{repo.repo_id}  ·  {repo.downloads:,} downloads")
            item.setData(ROLE, ("hub", repo.repo_id))
            self.models.insertItem(0, item)
        self.search_state.setText(f"{len(repos)} results on the Hub" if repos else "No results.")

    def _on_download_button_clicked(self) -> None:
        verdict = self.selected_verdict()
        repo = self._repo
        if verdict is None or repo is None:
            return
        services = self._desktop.services
        wanted = verdict.variant

        def find() -> DownloadRequest:
            found = hub_variant_for(wanted, services.hub.variants(repo))
            if found is None:
                raise RepoNotFound(f"{repo} has no complete {wanted.quant} GGUF")
            return DownloadRequest(repo, found.files)

        self.download_button.setEnabled(False)
        self._desktop.bridge.run(find, self._on_request_ready, self._on_hub_failed, owner=self)

    def _on_request_ready(self, request: DownloadRequest) -> None:
        self._update_buttons()
        self.download_requested.emit(request)

    def _on_hub_failed(self, exc: BaseException) -> None:
        self._update_buttons()
        self.search_state.setText(user_message(exc))
        show_error(self, exc)

    def _on_failed(self, exc: BaseException) -> None:
        show_error(self, exc)
