"""One dollar format for the Usage page, the status bar and ``homefire usage``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.core.usage.dollars import format_dollars


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("1234.5", "$1,234.50"),
        ("1", "$1.00"),
        ("0.04123", "$0.0412"),
        ("0.01", "$0.0100"),
        ("0.0006", "$0.000600"),
        ("0", "$0.0000"),
        ("-2.1", "-$2.10"),
        ("-0.00042", "-$0.000420"),
    ],
)
def test_cents_from_a_dollar_up_and_enough_places_below(amount: str, shown: str) -> None:
    assert format_dollars(Decimal(amount)) == shown


def test_a_light_day_never_reads_as_nothing() -> None:
    assert format_dollars(Decimal("0.00003")) != "$0.0000"
