"""Ollama's keep_alive values: seconds, Go durations, 0 and negatives."""

from __future__ import annotations

import pytest

from app.core.pool.keep_alive import KEEP_FOREVER, parse_keep_alive


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        (0, 0.0),
        ("0", 0.0),
        (30, 30.0),
        (2.5, 2.5),
        ("300", 300.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("0s", 0.0),
        (-1, KEEP_FOREVER),
        ("-1", KEEP_FOREVER),
        ("-5m", KEEP_FOREVER),
    ],
)
def test_values_ollama_accepts(value: object, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize(
    "value", ["soon", "5x", "m5", "5m junk", True, [1], {"a": 1}, "9" * 100 + "m", "nan"]
)
def test_anything_else_is_refused_with_the_reason(value: object) -> None:
    with pytest.raises(ValueError, match="keep_alive"):
        parse_keep_alive(value)


def test_a_huge_duration_stays_finite() -> None:
    huge = parse_keep_alive("99999999h")
    assert huge is not None
    assert 0 < huge < float("inf")
