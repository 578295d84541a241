"""The always-visible status bar: loaded models and their memory, RAM, today's tokens and savings,
server URL."""

from __future__ import annotations

from datetime import date, datetime

import psutil
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QStatusBar, QWidget

from app.core.errors import AppError
from app.core.sizes import format_size
from app.core.usage.counts import TokenCounts, UsageTotals
from app.core.usage.dollars import format_dollars
from app.core.usage.ledger import UsageEvent
from app.core.usage.pricing import Price
from app.core.usage.report import local_day_start
from app.core.usage.savings import cost_avoided
from app.gui.bridge import UsageRelay
from app.gui.desktop import Desktop
from app.gui.model_loader import LoadedModel

MEMORY_REFRESH_MS = 2000


class StatusBar(QStatusBar):
    def __init__(self, desktop: Desktop, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusBar")
        self._desktop = desktop
        self.model = QLabel()
        self.memory = QLabel()
        self.usage = QLabel()
        self.server = QLabel()
        for label in (self.model, self.memory, self.usage, self.server):
            label.setContentsMargins(6, 0, 6, 0)
        self.model.setObjectName("statusModel")
        self.usage.setObjectName("statusUsage")
        self.server.setObjectName("statusServer")
        self.server.setOpenExternalLinks(True)
        self.addWidget(self.model)
        self.addWidget(self.memory)
        self.addPermanentWidget(self.usage)
        self.addPermanentWidget(self.server)

        self._today = TokenCounts()
        self._day = datetime.now().date()
        self._price = _baseline_price(desktop)
        self._relay = UsageRelay(desktop.services.ledger, self)
        self._relay.usage_recorded.connect(self._on_relay_usage_recorded)
        ledger = desktop.services.ledger
        desktop.bridge.run(
            lambda: ledger.totals(since=local_day_start(date.today())),
            self._on_today_counted,
            owner=self,
        )

        loader = desktop.loader
        loader.loading_started.connect(lambda name: self.model.setText(f"Loading {name}…"))
        loader.model_loaded.connect(self._on_loader_model_loaded)
        loader.loading_failed.connect(lambda _exc: self._show_loaded())
        desktop.pool_events.changed.connect(self._show_loaded)
        self._show_loaded()
        self._timer = QTimer(self)
        self._timer.setInterval(MEMORY_REFRESH_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()
        self._on_timer_timeout()
        self.set_server_url(None)
        self._show_usage()

    def close_relays(self) -> None:
        self._relay.close()
        self._timer.stop()

    def set_server_url(self, url: str | None) -> None:
        if url is None:
            self.server.setText("Server off")
        else:
            self.server.setText(f'Serving <a href="{url}/v1/models">{url}/v1</a>')

    def _on_loader_model_loaded(self, _loaded: LoadedModel) -> None:
        self._show_loaded()

    def _show_loaded(self) -> None:
        """Every loaded model, and the memory they take together (measured over their loads)."""
        if self._desktop.loader.loading is not None:
            return  # "Loading …" stays until the load ends
        models = self._desktop.services.pool.models()
        if not models:
            self.model.setText("No model loaded")
            self.model.setToolTip("")
            return
        total = sum(m.memory_bytes for m in models)
        # A total with any estimate in it is an estimate.
        basis = "measured" if all(m.memory_measured for m in models) else "estimated"
        if len(models) == 1:
            (only,) = models
            text = f"{only.name} · ctx {only.info.n_ctx:,} · {format_size(total)} ({basis})"
        else:
            text = f"{len(models)} models loaded · {format_size(total)} ({basis})"
        self.model.setText(text)
        self.model.setToolTip(
            "\n".join(
                f"{m.name}: context {m.info.n_ctx:,}, {format_size(m.memory_bytes)} "
                f"{'measured' if m.memory_measured else 'estimated'}, loaded in "
                f"{m.info.load_s:.1f} s"
                for m in models
            )
        )

    def _on_timer_timeout(self) -> None:
        memory = psutil.virtual_memory()
        used = memory.total - memory.available
        self.memory.setText(
            f"RAM {format_size(used)} / {format_size(memory.total)} used · "
            f"{format_size(memory.available)} available"
        )
        if datetime.now().date() != self._day:
            self._day = datetime.now().date()
            self._today = TokenCounts()
            self._show_usage()

    def _on_today_counted(self, totals: UsageTotals) -> None:
        self._today = totals.tokens
        self._show_usage()

    def _on_relay_usage_recorded(self, event: UsageEvent) -> None:
        self._today = self._today + event.delta
        self._show_usage()

    def _show_usage(self) -> None:
        tokens = self._today.total
        text = f"Today {tokens:,} tokens"
        if self._price is not None:
            dollars = cost_avoided(self._today, self._price)
            text += f" · {format_dollars(dollars)} avoided vs {self._price.name}"
            self.usage.setToolTip(
                "Tokens counted by the engine (measured); dollars avoided estimated at "
                f"{self._price.name}'s list prices"
                + (f" as of {self._price.as_of}" if self._price.as_of else "")
            )
        self.usage.setText(text)


def _baseline_price(desktop: Desktop) -> Price | None:
    try:
        preferences = desktop.services.usage_preferences.load()
        baselines = preferences.baselines_in(preferences.price_table())
    except AppError:  # no price table means no dollar figure, never a crash
        return None
    return baselines[0] if baselines else None
