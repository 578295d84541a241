"""What the tokens would have cost on an API, the electricity they did cost, and the net.

All money is Decimal in the price table's currency, never float. Cost avoided is exact; the
one rounding is joules to kWh (to 1e-12 kWh, far below any meter's resolution). Energy that
was not measured is reported as such: its share of the savings has no net figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Literal

from app.core.usage.counts import TokenCounts, UsageTotals
from app.core.usage.pricing import Price

JOULES_PER_KWH = Decimal(3_600_000)
KWH_QUANTUM = Decimal("1e-12")
# Enough digits that no product or sum of realistic token counts and prices is ever rounded.
_PRECISION = 60

MeasurementStatus = Literal["measured", "partly measured", "not measured"]


def cost_avoided(tokens: TokenCounts, price: Price) -> Decimal:
    """Tokens × the API's prices per million; cached prompt tokens at the cached-input price."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        dollars_per_million = (
            tokens.uncached_prompt * price.input
            + tokens.cached_prompt * price.cached_input
            + tokens.completion * price.output
        )
        return dollars_per_million.scaleb(-6)


def kwh_from_joules(joules: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return (joules / JOULES_PER_KWH).quantize(KWH_QUANTUM, ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Electricity:
    """The energy measured for some generations and what it cost.

    ``measured_kwh`` is None when no generation was measured; ``cost`` is None then too, or
    when the price per kWh is not set.
    """

    measured_kwh: Decimal | None
    price_per_kwh: Decimal | None
    cost: Decimal | None
    measured_generations: int
    unmeasured_generations: int

    @property
    def status(self) -> MeasurementStatus:
        if self.unmeasured_generations == 0:
            return "measured"
        return "partly measured" if self.measured_generations else "not measured"


def electricity(totals: UsageTotals, price_per_kwh: Decimal | None) -> Electricity:
    measured = totals.measured_generations > 0 or totals.generations == 0
    kwh = kwh_from_joules(totals.energy_joules) if measured else None
    cost = None if kwh is None or price_per_kwh is None else kwh * price_per_kwh
    return Electricity(
        kwh, price_per_kwh, cost, totals.measured_generations, totals.unmeasured_generations
    )


@dataclass(frozen=True)
class Savings:
    """Cost avoided against one baseline, split by whether the energy was measured.

    ``net_measured`` = cost avoided on the measured share − its electricity cost (None if
    nothing was measured or no price per kWh is set). The unmeasured share has no net.
    """

    price: Price
    cost_avoided: Decimal
    measured_cost_avoided: Decimal
    unmeasured_cost_avoided: Decimal
    electricity: Electricity
    net_measured: Decimal | None

    @property
    def net(self) -> Decimal | None:
        """The net over everything, known only when every generation was measured."""
        return self.net_measured if self.electricity.status == "measured" else None


def savings(totals: UsageTotals, price: Price, price_per_kwh: Decimal | None) -> Savings:
    measured = cost_avoided(totals.measured, price)
    unmeasured = cost_avoided(totals.unmeasured, price)
    power = electricity(totals, price_per_kwh)
    net = None if power.cost is None else measured - power.cost
    return Savings(price, measured + unmeasured, measured, unmeasured, power, net)
