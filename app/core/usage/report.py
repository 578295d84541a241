"""One usage report for a time range: totals, breakdowns, savings per baseline, break-even.

The CLI prints it (``homefire usage``) and the app's Usage page shows it; ``to_json`` is the
stable machine form (``"schema": 1``). Money and energy are decimal strings, never floats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from app.core.usage.breakeven import MONTH_DAYS, BreakEven, break_even, monthly_volume
from app.core.usage.counts import UsageTotals
from app.core.usage.ledger import ClientKey, UsageLedger
from app.core.usage.pricing import Price, PriceTable
from app.core.usage.savings import Electricity, Savings, cost_avoided, electricity, savings

JSON_SCHEMA = 1


def local_day_start(day: date) -> datetime:
    """Local midnight starting ``day``: usage days are this machine's local days."""
    return datetime.combine(day, time()).astimezone()


@dataclass(frozen=True)
class UsageReport:
    since: datetime | None
    until: datetime | None
    currency: str
    prices_as_of: date
    baselines: tuple[Price, ...]
    totals: UsageTotals
    savings: tuple[Savings, ...]
    electricity: Electricity
    by_day: Mapping[date, UsageTotals]
    by_client: Mapping[ClientKey, UsageTotals]
    by_model: Mapping[str, UsageTotals]
    monthly: UsageTotals
    hardware_cost: Decimal | None
    break_even: tuple[BreakEven, ...]

    def cost_avoided(self, totals: UsageTotals) -> dict[str, Decimal]:
        """Cost avoided by a group of rows, per baseline id."""
        return {price.id: cost_avoided(totals.tokens, price) for price in self.baselines}


def build_report(
    ledger: UsageLedger,
    table: PriceTable,
    baselines: Sequence[Price],
    *,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    price_per_kwh: Decimal | None,
    hardware_cost: Decimal | None,
) -> UsageReport:
    totals = ledger.totals(since, until)
    monthly = monthly_volume(ledger, now)
    return UsageReport(
        since=since,
        until=until,
        currency=table.currency,
        prices_as_of=table.as_of,
        baselines=tuple(baselines),
        totals=totals,
        savings=tuple(savings(totals, price, price_per_kwh) for price in baselines),
        electricity=electricity(totals, price_per_kwh),
        by_day=ledger.by_day(since, until),
        by_client=ledger.by_client(since, until),
        by_model=ledger.by_model(since, until),
        monthly=monthly,
        hardware_cost=hardware_cost,
        break_even=()
        if hardware_cost is None
        else tuple(break_even(hardware_cost, monthly, p, price_per_kwh) for p in baselines),
    )


def to_json(report: UsageReport) -> dict[str, Any]:
    return {
        "schema": JSON_SCHEMA,
        "currency": report.currency,
        "range": {"since": _iso(report.since), "until": _iso(report.until)},
        "prices_as_of": report.prices_as_of.isoformat(),
        "baselines": [_price_json(price) for price in report.baselines],
        "totals": _totals_json(report.totals),
        "savings": [_savings_json(s) for s in report.savings],
        "electricity": _electricity_json(report.electricity),
        "by_day": [
            {"date": day.isoformat(), **_group_json(report, totals)}
            for day, totals in report.by_day.items()
        ],
        "by_client": [
            {"source": key.source, "client": key.client, **_group_json(report, totals)}
            for key, totals in report.by_client.items()
        ],
        "by_model": [
            {"model": model, **_group_json(report, totals)}
            for model, totals in report.by_model.items()
        ],
        "break_even": {
            "window_days": MONTH_DAYS,
            "hardware_cost": _text(report.hardware_cost),
            "monthly": _totals_json(report.monthly),
            "baselines": [
                {
                    "baseline": be.monthly.price.id,
                    "monthly_cost_avoided": _fixed(be.monthly.cost_avoided),
                    "monthly_net": _text(be.monthly_net),
                    "months_gross": _text(be.months_gross),
                    "months_net": _text(be.months_net),
                }
                for be in report.break_even
            ],
        },
    }


def _totals_json(totals: UsageTotals) -> dict[str, Any]:
    return {
        "generations": totals.generations,
        "in_progress": totals.in_progress,
        "prompt_tokens": totals.tokens.prompt,
        "cached_prompt_tokens": totals.tokens.cached_prompt,
        "completion_tokens": totals.tokens.completion,
        "total_tokens": totals.tokens.total,
        "energy_measured_generations": totals.measured_generations,
        "energy_joules": _fixed(totals.energy_joules) if totals.measured_generations else None,
    }


def _group_json(report: UsageReport, totals: UsageTotals) -> dict[str, Any]:
    costs = report.cost_avoided(totals)
    return {**_totals_json(totals), "cost_avoided": {k: _fixed(v) for k, v in costs.items()}}


def _price_json(price: Price) -> dict[str, Any]:
    return {
        "id": price.id,
        "name": price.name,
        "vendor": price.vendor,
        "input": _fixed(price.input),
        "cached_input": _fixed(price.cached_input),
        "output": _fixed(price.output),
        "as_of": None if price.as_of is None else price.as_of.isoformat(),
        "source": price.source,
        "origin": price.origin,
    }


def _savings_json(s: Savings) -> dict[str, Any]:
    return {
        "baseline": s.price.id,
        "cost_avoided": _fixed(s.cost_avoided),
        "measured_cost_avoided": _fixed(s.measured_cost_avoided),
        "unmeasured_cost_avoided": _fixed(s.unmeasured_cost_avoided),
        "net_measured": _text(s.net_measured),
        "net": _text(s.net),
    }


def _electricity_json(e: Electricity) -> dict[str, Any]:
    return {
        "status": e.status,
        "measured_kwh": _text(e.measured_kwh),
        "price_per_kwh": _text(e.price_per_kwh),
        "cost": _text(e.cost),
        "measured_generations": e.measured_generations,
        "unmeasured_generations": e.unmeasured_generations,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else _fixed(value)


def _fixed(value: Decimal) -> str:
    # Fixed-point always: str() would print tiny amounts as "7.5E-8".
    return format(value, "f")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
