"""Cost avoided, electricity, net and break-even, pinned to exact Decimal values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from app.core.usage.breakeven import break_even, months_to_break_even
from app.core.usage.counts import TokenCounts, UsageTotals
from app.core.usage.ledger import UsageLedger
from app.core.usage.pricing import Price
from app.core.usage.savings import cost_avoided, electricity, kwh_from_joules, savings

GPT_41 = Price(
    id="gpt-4.1",
    name="GPT-4.1",
    input=Decimal("2.00"),
    cached_input=Decimal("0.50"),
    output=Decimal("8.00"),
    as_of=date(2025, 4, 14),
)
FLASH = Price(
    id="gemini-2.5-flash",
    name="Gemini 2.5 Flash",
    input=Decimal("0.30"),
    cached_input=Decimal("0.075"),
    output=Decimal("2.50"),
)
ALL = TokenCounts(prompt=1_234_567, cached_prompt=234_567, completion=89_012)
MEASURED = TokenCounts(prompt=1_000_000, cached_prompt=200_000, completion=50_000)


def test_cost_avoided_prices_cached_prompt_tokens_at_the_cached_rate() -> None:
    # 1,000,000 × 2.00 + 234,567 × 0.50 + 89,012 × 8.00 = 2,829,379.50 per million
    assert cost_avoided(ALL, GPT_41) == Decimal("2.8293795")
    # 1,000,000 × 0.30 + 234,567 × 0.075 + 89,012 × 2.50 = 540,122.525 per million
    assert cost_avoided(ALL, FLASH) == Decimal("0.540122525")
    assert cost_avoided(TokenCounts(completion=1), FLASH) == Decimal("0.0000025")
    assert cost_avoided(TokenCounts(), GPT_41) == 0


def test_joules_become_kilowatt_hours_to_a_picowatt_hour() -> None:
    assert kwh_from_joules(Decimal(7200)) == Decimal("0.002")
    assert kwh_from_joules(Decimal(1000)) == Decimal("0.000277777778")


def test_net_is_given_for_the_measured_share_and_not_invented_for_the_rest() -> None:
    totals = UsageTotals(
        generations=3,
        tokens=ALL,
        measured_generations=2,
        measured=MEASURED,
        energy_joules=Decimal(7200),
    )
    result = savings(totals, GPT_41, Decimal("0.30"))

    assert result.cost_avoided == Decimal("2.8293795")
    assert result.measured_cost_avoided == Decimal("2.1")
    assert result.unmeasured_cost_avoided == Decimal("0.7293795")
    assert result.electricity.measured_kwh == Decimal("0.002")
    assert result.electricity.cost == Decimal("0.0006")
    assert result.electricity.status == "partly measured"
    assert result.net_measured == Decimal("2.0994")
    assert result.net is None  # a third of the generations were not measured


def test_nothing_measured_means_no_energy_figure_at_all() -> None:
    totals = UsageTotals(generations=2, tokens=ALL)
    power = electricity(totals, Decimal("0.30"))
    assert (power.measured_kwh, power.cost, power.status) == (None, None, "not measured")
    assert savings(totals, GPT_41, Decimal("0.30")).net_measured is None


def test_without_a_price_per_kwh_energy_is_shown_but_has_no_cost() -> None:
    totals = UsageTotals(1, MEASURED, 1, MEASURED, Decimal(7200))
    result = savings(totals, GPT_41, None)
    assert result.electricity.measured_kwh == Decimal("0.002")
    assert (result.electricity.cost, result.net) == (None, None)


def test_break_even_divides_hardware_cost_by_monthly_net_savings() -> None:
    month = TokenCounts(prompt=30_000_000, cached_prompt=10_000_000, completion=3_000_000)
    totals = UsageTotals(40, month, 40, month, Decimal(36_000_000))  # 10 kWh measured

    result = break_even(Decimal(2000), totals, GPT_41, Decimal("0.30"))

    assert result.monthly.cost_avoided == Decimal(69)  # 40M + 5M + 24M per million
    assert result.monthly.electricity.cost == Decimal("3.00")
    assert result.monthly_net == Decimal(66)
    assert result.months_net == Decimal("30.4")  # 30.303... rounded up
    assert result.months_gross == Decimal("29.0")  # 28.985... rounded up


def test_break_even_is_never_when_savings_do_not_cover_electricity() -> None:
    assert months_to_break_even(Decimal(1000), Decimal(0)) is None
    assert months_to_break_even(Decimal(1000), Decimal("-0.01")) is None
    assert months_to_break_even(Decimal(1000), Decimal(3)) == Decimal("333.4")
    with pytest.raises(ValueError, match="negative"):
        break_even(Decimal(-1), UsageTotals(), GPT_41, None)


def test_break_even_net_is_not_measured_when_the_month_was_not() -> None:
    month = TokenCounts(prompt=1_000_000, completion=1_000_000)
    result = break_even(Decimal(500), UsageTotals(5, month), GPT_41, Decimal("0.30"))
    assert result.months_gross == Decimal("50.0")  # 500 / 10.00
    assert (result.monthly_net, result.months_net) == (None, None)


def test_ledger_rows_sum_to_the_same_exact_cost(ledger: UsageLedger) -> None:
    for prompt, cached, completion, joules in (
        (600_000, 100_000, 30_000, Decimal("3600")),
        (400_000, 100_000, 20_000, Decimal("3600")),
        (234_567, 34_567, 39_012, None),
    ):
        gid = ledger.start(
            source="api", model="m", prompt_tokens=prompt, cached_prompt_tokens=cached
        )
        ledger.finish(gid, completion_tokens=completion, finish_reason="stop", energy_joules=joules)

    result = savings(ledger.totals(), GPT_41, Decimal("0.30"))
    assert result.cost_avoided == Decimal("2.8293795")
    assert result.net_measured == Decimal("2.0994")
    assert result.unmeasured_cost_avoided == Decimal("0.7293795")
