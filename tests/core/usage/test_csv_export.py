"""The Usage page's CSV export: one row per generation in range, and a clear error on a bad path."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from app.core.errors import StorageError
from app.core.usage.csv_export import CSV_HEADER, export_csv
from app.core.usage.ledger import UsageLedger

from .conftest import T0, ManualClock


def test_each_generation_in_range_is_one_row(
    ledger: UsageLedger, clock: ManualClock, tmp_path: Path
) -> None:
    early = ledger.start(source="chat", model="m", prompt_tokens=5)
    ledger.finish(early, completion_tokens=2, finish_reason="stop")
    clock.advance(3600)
    late = ledger.start(source="api", client="Continue", model="m", prompt_tokens=7)
    ledger.finish(late, completion_tokens=3, finish_reason="length")

    target = tmp_path / "usage.csv"
    assert export_csv(ledger, target, since=None) == 2
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert tuple(rows[0]) == CSV_HEADER
    assert [(r["client"], r["completion_tokens"], r["finish_reason"]) for r in rows] == [
        ("", "2", "stop"),
        ("Continue", "3", "length"),
    ]
    assert export_csv(ledger, target, since=T0.replace(minute=30)) == 1


def test_an_unwritable_path_is_a_storage_error(ledger: UsageLedger, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot write the usage export"):
        export_csv(ledger, tmp_path / "no-such-folder" / "usage.csv", since=None)
