"""Usage days are this machine's local days, for the status bar, the Usage page and the command."""

from __future__ import annotations

from datetime import date, timedelta

from app.core.usage.report import local_day_start


def test_a_day_starts_at_local_midnight_with_its_offset() -> None:
    day = date(2025, 3, 30)  # a DST change in much of Europe: each day still starts at 00:00
    for offset in range(3):
        start = local_day_start(day + timedelta(days=offset))
        assert start.tzinfo is not None
        assert (start.date(), start.hour, start.minute) == (day + timedelta(days=offset), 0, 0)
