"""The Usage page: tokens counted, the API cost they avoided, electricity, break-even, CSV export.

Figures come from the usage ledger (the engine counts every token: measured); dollar amounts are
estimated at the reference APIs' list prices; electricity is measured where a meter exists and
says "not measured" otherwise, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import AppError, StorageError
from app.core.usage.breakeven import break_even
from app.core.usage.counts import UsageTotals
from app.core.usage.csv_export import export_csv
from app.core.usage.dollars import format_dollars
from app.core.usage.ledger import UsageEvent
from app.core.usage.preferences import UsagePreferences, UsagePreferencesStore
from app.core.usage.pricing import PriceTable
from app.core.usage.report import UsageReport, build_report, local_day_start
from app.gui.bridge import UsageRelay
from app.gui.desktop import Desktop
from app.gui.errors import show_error
from app.gui.usage.bar_chart import DayBarChart

log = logging.getLogger(__name__)

SAVE_DELAY_MS = 600
RANGES = {"Today": 0, "Last 7 days": 7, "Last 30 days": 30, "All time": None}

CHART_SERIES = ("Tokens per day", "Dollars avoided per day")


def money(value: Decimal | None) -> str:
    return "–" if value is None else format_dollars(value)


class UsagePage(QWidget):
    report_shown = Signal(object)  # UsageReport

    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("usagePage")
        self._desktop = desktop
        self._ledger = desktop.services.ledger
        self._store = desktop.services.usage_preferences
        self._preferences = self._store.load()
        self._report: UsageReport | None = None
        try:
            self._table: PriceTable | None = self._preferences.price_table()
        except AppError:
            self._table = None
        # Arrow keys step the spin boxes many times a second: write once the user pauses.
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self._on_save_timer_timeout)
        self._saving = False

        self.range = QComboBox()
        self.range.addItems(list(RANGES))
        self.range.setCurrentText("Last 30 days")
        self.range.currentTextChanged.connect(lambda _t: self.refresh())
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._on_export_button_clicked)
        head = QHBoxLayout()
        head.addWidget(QLabel("<h2>Usage</h2>"))
        head.addStretch(1)
        self.chart_series = QComboBox()
        self.chart_series.setObjectName("chartSeries")
        self.chart_series.addItems(CHART_SERIES)
        self.chart_series.currentIndexChanged.connect(lambda _i: self._show_chart())
        head.addWidget(self.chart_series)
        head.addWidget(self.range)
        head.addWidget(self.export_button)

        self.totals = QLabel()
        self.totals.setObjectName("usageTotals")
        self.totals.setWordWrap(True)
        self.totals.setTextFormat(Qt.TextFormat.RichText)
        self.chart = DayBarChart()
        self.clients = self._breakdown_table("Client")
        self.models = self._breakdown_table("Model")

        self.hardware_cost = QDoubleSpinBox()
        self.hardware_cost.setRange(0, 1_000_000)
        self.hardware_cost.setPrefix("$")
        self.hardware_cost.setDecimals(0)
        self.hardware_cost.setValue(float(self._preferences.hardware_cost or 0))
        self.kwh_price = QDoubleSpinBox()
        self.kwh_price.setRange(0, 10)
        self.kwh_price.setDecimals(3)
        self.kwh_price.setPrefix("$")
        self.kwh_price.setSuffix(" per kWh")
        self.kwh_price.setValue(float(self._preferences.electricity_price_per_kwh or 0))
        self.break_even = QLabel()
        self.break_even.setObjectName("breakEven")
        self.break_even.setWordWrap(True)
        self.break_even.setTextFormat(Qt.TextFormat.RichText)
        self.hardware_cost.valueChanged.connect(self._on_costs_changed)
        self.kwh_price.valueChanged.connect(self._on_costs_changed)
        calculator = QGroupBox("Break-even")
        form = QFormLayout(calculator)
        form.addRow("What the machine cost", self.hardware_cost)
        form.addRow("Electricity", self.kwh_price)
        form.addRow(self.break_even)

        breakdowns = QHBoxLayout()
        for title, table in (("By client", self.clients), ("By model", self.models)):
            group = QGroupBox(title)
            QVBoxLayout(group).addWidget(table)
            breakdowns.addWidget(group)
        breakdowns.addWidget(calculator)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.addLayout(head)
        layout.addWidget(self.totals)
        layout.addWidget(self.chart, 1)
        layout.addLayout(breakdowns, 1)

        self._relay = UsageRelay(self._ledger, self)
        self._relay.usage_recorded.connect(self._on_relay_usage_recorded)
        self.refresh()

    @staticmethod
    def _breakdown_table(first: str) -> QTableWidget:
        table = QTableWidget(0, 3)
        table.setHorizontalHeaderLabels((first, "Tokens", "API cost avoided"))
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setShowGrid(False)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        return table

    def since(self) -> datetime | None:
        days = RANGES[self.range.currentText()]
        if days is None:
            return None
        return local_day_start(date.today() - timedelta(days=max(days - 1, 0)))

    def refresh(self) -> None:
        table = self._table
        if table is None:
            self.totals.setText("The price table is missing from this installation.")
            return
        preferences = self._current_preferences()
        baselines = table.baselines(preferences.baselines)
        since = self.since()
        ledger = self._ledger

        def work() -> UsageReport:
            return build_report(
                ledger, table, baselines, since=since, until=None,
                now=datetime.now().astimezone(),
                price_per_kwh=preferences.electricity_price_per_kwh,
                hardware_cost=preferences.hardware_cost,
            )  # fmt: skip

        self._desktop.bridge.run(work, self._on_report_built, self._on_failed, owner=self)

    def _on_report_built(self, report: UsageReport) -> None:
        self._report = report
        t = report.totals
        lines = [
            f"<b>{t.tokens.total:,}</b> tokens counted ({t.tokens.prompt:,} read, "
            f"{t.tokens.completion:,} written) in {t.generations:,} replies (measured)",
        ]
        for s in report.savings:
            lines.append(
                f"<b>{money(s.cost_avoided)}</b> avoided vs {s.price.name} "
                f"(estimated at list prices{f' as of {s.price.as_of}' if s.price.as_of else ''})"
            )
        e = report.electricity
        if e.measured_kwh is None:
            lines.append("Electricity: not measured on this machine (no energy meter readable)")
        else:
            cost = f", {money(e.cost)}" if e.cost is not None else " (set a price per kWh)"
            lines.append(f"Electricity: {e.measured_kwh} kWh {e.status}{cost}")
        self.totals.setText("<br>".join(lines))
        self._show_chart()
        self._fill(self.clients, {
            (k.client or "Homefire chat") if k.source == "chat" else k.client: v
            for k, v in report.by_client.items()
        }, report)  # fmt: skip
        self._fill(self.models, dict(report.by_model), report)
        self._show_break_even()
        self.report_shown.emit(report)

    def _show_chart(self) -> None:
        report = self._report
        if report is None:
            return
        baseline = report.baselines[0] if report.baselines else None
        if self.chart_series.currentIndex() == 0 or baseline is None:
            self.chart.set_days(_days(report.by_day, report.since, lambda t: t.tokens.total))
            return
        self.chart.set_days(
            _days(
                report.by_day,
                report.since,
                lambda t: float(report.cost_avoided(t).get(baseline.id, Decimal(0))),
            ),
            f"dollars avoided per day vs {baseline.name} (estimated at list prices)",
            lambda value: money(Decimal(str(value))),
        )

    def _fill(
        self, table: QTableWidget, groups: dict[str, UsageTotals], report: UsageReport
    ) -> None:
        table.setRowCount(len(groups))
        first = report.baselines[0].id if report.baselines else None
        for row, (name, totals) in enumerate(
            sorted(groups.items(), key=lambda kv: -kv[1].tokens.total)
        ):
            avoided = report.cost_avoided(totals).get(first) if first else None
            for column, text in enumerate((name, f"{totals.tokens.total:,}", money(avoided))):
                table.setItem(row, column, QTableWidgetItem(text))

    # -- break-even ----------------------------------------------------------------------------

    def _current_preferences(self) -> UsagePreferences:
        cost = Decimal(str(round(self.hardware_cost.value())))
        kwh = Decimal(str(round(self.kwh_price.value(), 3)))
        return self._preferences.model_copy(update={
            "hardware_cost": cost if cost > 0 else None,
            "electricity_price_per_kwh": kwh if kwh > 0 else None,
        })  # fmt: skip

    def _on_costs_changed(self, _value: float) -> None:
        self._preferences = self._current_preferences()
        self._save_timer.start()
        self._show_break_even()

    def _on_save_timer_timeout(self) -> None:
        if self._saving:  # one write at a time, so an older one never lands last
            self._save_timer.start()
            return
        self._saving = True
        preferences, store = self._preferences, self._store
        self._desktop.bridge.run(
            lambda: _save(store, preferences), self._on_saved, self._on_save_failed, owner=self
        )

    def _on_saved(self, _none: None) -> None:
        self._saving = False

    def _on_save_failed(self, exc: BaseException) -> None:
        self._saving = False
        show_error(self, exc)

    def save_pending(self) -> None:
        """Write what the user changed and the timer has not saved yet (at quit)."""
        if not self._save_timer.isActive():
            return
        self._save_timer.stop()
        try:
            _save(self._store, self._preferences)
        except StorageError as exc:
            log.warning("%s", exc.user_message)

    def _show_break_even(self) -> None:
        report = self._report
        preferences = self._preferences
        if report is None or not report.baselines:
            return
        if preferences.hardware_cost is None:
            self.break_even.setText("Enter what the machine cost to see when it pays for itself.")
            return
        lines = [
            f"<small>From the last 30 days: {report.monthly.tokens.total:,} tokens a month</small>"
        ]
        for price in report.baselines:
            result = break_even(
                preferences.hardware_cost, report.monthly, price,
                preferences.electricity_price_per_kwh,
            )  # fmt: skip
            months = result.months_net or result.months_gross
            basis = "net of electricity" if result.months_net is not None else "before electricity"
            when = (
                f"<b>{months} months</b> ({basis})"
                if months is not None
                else "never at this volume"
            )
            lines.append(f"vs {price.name}: {when}")
        self.break_even.setText("<br>".join(lines))

    # -- live and export -----------------------------------------------------------------------

    def _on_relay_usage_recorded(self, event: UsageEvent) -> None:
        if event.kind == "finished" and self.isVisible():
            self.refresh()

    def _on_export_button_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export usage", str(Path.home() / "homefire-usage.csv"), "CSV (*.csv)"
        )
        if name:
            self.export(Path(name))

    def export(self, path: Path) -> None:
        since = self.since()
        self._desktop.bridge.run(
            lambda: export_csv(self._ledger, path, since), lambda _n: None, self._on_failed, self
        )

    def _on_failed(self, exc: BaseException) -> None:
        show_error(self, exc)

    def shutdown(self) -> None:
        self.save_pending()
        self._relay.close()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh()


def _save(store: UsagePreferencesStore, preferences: UsagePreferences) -> None:
    try:
        store.save(preferences)
    except OSError as exc:
        raise StorageError(f"cannot save the usage settings in {store.path}: {exc}") from exc


def _days(
    by_day: Mapping[date, UsageTotals],
    since: datetime | None,
    value: Callable[[UsageTotals], float],
) -> list[tuple[date, float]]:
    """Every day of the range (empty days too, so gaps show), oldest first."""
    days = dict(by_day)
    today = datetime.now().date()
    start = since.date() if since else (min(days) if days else today)
    out = []
    day = start
    while day <= today:
        totals = days.get(day)
        out.append((day, value(totals) if totals else 0.0))
        day += timedelta(days=1)
    return out
