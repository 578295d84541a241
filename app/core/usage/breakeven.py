"""Break-even: hardware cost ÷ monthly net savings = months until the machine has paid off.

The monthly volume is the user's real one (the last 30 days of the ledger); the calculator in
the app lets them change it, so the arithmetic takes plain totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext

from app.core.usage.counts import UsageTotals
from app.core.usage.ledger import UsageLedger
from app.core.usage.pricing import Price
from app.core.usage.savings import Savings, savings

MONTH_DAYS = 30
MONTHS_QUANTUM = Decimal("0.1")


def months_to_break_even(hardware_cost: Decimal, monthly_savings: Decimal) -> Decimal | None:
    """Months to pay off, rounded up to a tenth; None when the savings never pay it off."""
    if monthly_savings <= 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 60
        return (hardware_cost / monthly_savings).quantize(MONTHS_QUANTUM, ROUND_CEILING)


@dataclass(frozen=True)
class BreakEven:
    """Against one baseline. ``months_net`` needs the energy of the whole month measured and a
    price per kWh; ``months_gross`` ignores electricity, so it is the optimistic bound."""

    hardware_cost: Decimal
    monthly: Savings
    months_gross: Decimal | None
    months_net: Decimal | None

    @property
    def monthly_net(self) -> Decimal | None:
        return self.monthly.net


def break_even(
    hardware_cost: Decimal,
    monthly_volume: UsageTotals,
    price: Price,
    price_per_kwh: Decimal | None,
) -> BreakEven:
    if hardware_cost < 0:
        raise ValueError("hardware cost cannot be negative")
    monthly = savings(monthly_volume, price, price_per_kwh)
    gross = months_to_break_even(hardware_cost, monthly.cost_avoided)
    net = None if monthly.net is None else months_to_break_even(hardware_cost, monthly.net)
    return BreakEven(hardware_cost, monthly, gross, net)


def monthly_volume(ledger: UsageLedger, now: datetime) -> UsageTotals:
    """What the last 30 days up to ``now`` used: the real volume the calculator starts from."""
    return ledger.totals(since=now - timedelta(days=MONTH_DAYS), until=now)
