"""A ledger on a temporary database with a clock the test moves by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.usage.ledger import UsageLedger

T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


class ManualClock:
    """Wall time and monotonic time that only move when the test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self.wall = start
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "homefire.sqlite3"


@pytest.fixture
def ledger(db_path: Path, clock: ManualClock) -> Iterator[UsageLedger]:
    opened = UsageLedger(db_path, now=clock.now, monotonic=clock.monotonic)
    yield opened
    opened.close()
