"""The shipped price table, the user's edits over it, and the preferences file."""

from __future__ import annotations

import json
import logging
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ConfigError
from app.core.storage.paths import AppPaths
from app.core.usage.preferences import UsagePreferences, UsagePreferencesStore
from app.core.usage.pricing import (
    PriceOverride,
    load_shipped,
    merge_user_prices,
    shipped_pricing_path,
)


def _table(tmp_path: Path, gpt_input: str) -> Path:
    path = tmp_path / f"pricing-{gpt_input}.json"
    raw: dict[str, Any] = {
        "schema": 1,
        "as_of": "2025-04-14",
        "currency": "USD",
        "default_baselines": ["gpt-4.1"],
        "prices": [
            {
                "id": "gpt-4.1",
                "name": "GPT-4.1",
                "vendor": "OpenAI",
                "input": gpt_input,
                "cached_input": "0.50",
                "output": "8.00",
                "as_of": "2025-04-14",
                "source": "https://openai.com/index/gpt-4-1/",
            }
        ],
    }
    path.write_text(json.dumps(raw))
    return path


def test_the_shipped_table_names_a_dated_sourced_price_for_each_reference_api() -> None:
    table = load_shipped(shipped_pricing_path())
    assert table.currency == "USD"
    for family in ("gpt-4o", "gpt-4.1", "gpt-4.1-mini"):
        assert family in table.prices
    names = " ".join(p.name for p in table.prices.values())
    for family in ("Claude Sonnet", "Claude Haiku", "Claude Opus", "Gemini 2.5 Pro", "Flash"):
        assert family in names
    for price in table.prices.values():
        assert price.as_of is not None
        assert price.as_of <= table.as_of
        assert price.source.startswith("https://")
        assert 0 < price.cached_input <= price.input < price.output
        assert price.origin == "shipped"
    assert [p.id for p in table.baselines()] == list(table.default_baselines)


def test_your_edits_survive_an_update_of_the_shipped_table(tmp_path: Path) -> None:
    overrides = {
        "gpt-4.1": PriceOverride(output=Decimal("9.00")),
        "my-lab-api": PriceOverride(name="Lab API", input=Decimal("1"), output=Decimal("4")),
    }
    before = merge_user_prices(load_shipped(_table(tmp_path, "2.00")), overrides)
    after = merge_user_prices(load_shipped(_table(tmp_path, "1.50")), overrides)

    assert before.get("gpt-4.1").input == Decimal("2.00")
    edited = after.get("gpt-4.1")
    assert (edited.input, edited.output, edited.origin) == (
        Decimal("1.50"),
        Decimal("9.00"),
        "edited",
    )
    own = after.get("my-lab-api")
    # No cached price given: cached tokens cost the full input price (no invented discount).
    assert (own.input, own.cached_input, own.output, own.origin) == (
        Decimal(1),
        Decimal(1),
        Decimal(4),
        "user",
    )


def test_an_incomplete_price_of_yours_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        table = merge_user_prices(
            load_shipped(_table(tmp_path, "2.00")), {"half": PriceOverride(name="Half")}
        )
    assert "half" not in table.prices
    assert "ignoring your price 'half'" in caplog.text


def test_an_unknown_baseline_names_the_known_ones(tmp_path: Path) -> None:
    table = load_shipped(_table(tmp_path, "2.00"))
    with pytest.raises(ConfigError, match=r"known: gpt-4\.1"):
        table.baselines(["gpt-9"])


def test_a_broken_shipped_table_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "pricing.json"
    path.write_text('{"schema": 1, "prices": "nope"}')
    with pytest.raises(ConfigError, match="cannot be read"):
        load_shipped(path)


def test_preferences_round_trip_exactly_and_save_only_what_you_set() -> None:
    store = UsagePreferencesStore.at(AppPaths.from_env())
    assert store.load() == UsagePreferences()

    prefs = UsagePreferences(
        baselines=["gpt-4.1", "my-lab-api"],
        electricity_price_per_kwh=Decimal("0.3125"),
        hardware_cost=Decimal("1999.99"),
        prices={"gpt-4.1": PriceOverride(output=Decimal("9.00"), as_of=date(2026, 11, 1))},
    )
    store.save(prefs)

    saved = json.loads(store.path.read_text())
    assert saved == {
        "baselines": ["gpt-4.1", "my-lab-api"],
        "electricity_price_per_kwh": "0.3125",
        "hardware_cost": "1999.99",
        "prices": {"gpt-4.1": {"as_of": "2026-11-01", "output": "9.00"}},
        "schema_version": 1,
    }
    assert store.load() == prefs


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"schema_version": 99}',
        '{"electricity_price_per_kwh": "-1"}',
    ],
)
def test_a_corrupt_preferences_file_means_defaults_and_is_kept_aside(content: str) -> None:
    store = UsagePreferencesStore.at(AppPaths.from_env())
    store.path.parent.mkdir(parents=True, exist_ok=True)
    store.path.write_text(content)

    assert store.load() == UsagePreferences()
    assert store.path.with_name("usage.json.corrupt").read_text() == content


def test_the_price_table_every_page_and_command_uses_is_the_shipped_one_with_your_prices() -> None:
    shipped = load_shipped(shipped_pricing_path())
    first = shipped.default_baselines[0]
    preferences = UsagePreferences(prices={first: PriceOverride(output=Decimal("99"))})
    table = preferences.price_table()
    assert table.get(first).output == Decimal(99)
    assert table.get(first).origin == "edited"
    assert set(table.prices) == set(shipped.prices)


def test_baselines_are_the_ones_asked_for_else_yours_else_the_tables() -> None:
    table = load_shipped(shipped_pricing_path())
    ids = list(table.prices)
    mine = UsagePreferences(baselines=[ids[-1]])
    assert [p.id for p in mine.baselines_in(table)] == [ids[-1]]
    assert [p.id for p in mine.baselines_in(table, [ids[0]])] == [ids[0]]
    defaults = [p.id for p in UsagePreferences().baselines_in(table)]
    assert defaults == list(table.default_baselines)
