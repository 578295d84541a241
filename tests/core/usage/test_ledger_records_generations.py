"""The ledger records each generation once, checkpoints while streaming, and sums what it holds."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.usage.counts import TokenCounts
from app.core.usage.ledger import ClientKey, UsageEvent, UsageLedger

from .conftest import T0, ManualClock


def _stored(db_path: Path, generation_id: int) -> tuple[object, ...]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute(
            "SELECT prompt_tokens, cached_prompt_tokens, completion_tokens, finish_reason, "
            "energy_mj FROM usage_generations WHERE id = ?",
            (generation_id,),
        ).fetchone()


def test_a_finished_generation_is_one_row_with_what_it_produced(
    ledger: UsageLedger, clock: ManualClock
) -> None:
    gid = ledger.start(source="api", client="Continue", model="gemma-3-270m", prompt_tokens=120)
    clock.advance(2)
    ledger.finish(
        gid,
        completion_tokens=42,
        finish_reason="length",
        cached_prompt_tokens=100,
        prompt_seconds=0.25,
        decode_seconds=1.5,
        energy_joules=Decimal("37.125"),
    )

    [row] = ledger.records()
    assert row.id == gid
    assert (row.source, row.client, row.model) == ("api", "Continue", "gemma-3-270m")
    assert row.tokens == TokenCounts(prompt=120, cached_prompt=100, completion=42)
    assert row.started_at == T0
    assert row.ended_at == T0 + timedelta(seconds=2)
    assert (row.prompt_seconds, row.decode_seconds) == (0.25, 1.5)
    assert row.energy_joules == Decimal("37.125")
    assert row.finish_reason == "length"


def test_energy_not_measured_stays_null_and_zero_joules_stays_zero(ledger: UsageLedger) -> None:
    unmeasured = ledger.start(source="chat", model="m", prompt_tokens=1)
    ledger.finish(unmeasured, completion_tokens=1, finish_reason="stop")
    measured = ledger.start(source="chat", model="m", prompt_tokens=1)
    ledger.finish(measured, completion_tokens=1, finish_reason="stop", energy_joules=0)

    energies = [r.energy_joules for r in ledger.records()]
    assert energies == [None, Decimal(0)]
    totals = ledger.totals()
    assert (totals.measured_generations, totals.unmeasured_generations) == (1, 1)


def test_progress_checkpoints_at_most_once_per_interval(
    ledger: UsageLedger, clock: ManualClock, db_path: Path
) -> None:
    gid = ledger.start(source="chat", model="m", prompt_tokens=10)
    clock.advance(0.4)
    ledger.progress(gid, 3)
    assert _stored(db_path, gid)[2] == 0  # too soon after the start was written

    clock.advance(0.6)
    ledger.progress(gid, 7)
    assert _stored(db_path, gid)[2] == 7

    clock.advance(0.5)
    ledger.progress(gid, 9)
    assert _stored(db_path, gid)[2] == 7
    assert _stored(db_path, gid)[3] is None  # still in progress


def test_totals_count_a_streaming_reply_live_and_once_after_it_finishes(
    ledger: UsageLedger, clock: ManualClock
) -> None:
    gid = ledger.start(source="api", client="Cline", model="m", prompt_tokens=50)
    clock.advance(0.1)
    ledger.progress(gid, 5)  # not checkpointed yet, but the live total sees it

    live = ledger.totals()
    assert live.tokens == TokenCounts(50, 0, 5)
    assert (live.generations, live.in_progress) == (1, 1)
    assert ledger.by_client() == {ClientKey("api", "Cline"): live}

    ledger.finish(gid, completion_tokens=6, finish_reason="cancelled")
    done = ledger.totals()
    assert done.tokens == TokenCounts(50, 0, 6)
    assert (done.generations, done.in_progress) == (1, 0)


def test_subscribers_hear_deltas_that_add_up_to_the_final_counts(ledger: UsageLedger) -> None:
    events: list[UsageEvent] = []
    unsubscribe = ledger.subscribe(events.append)

    def broken(_event: UsageEvent) -> None:
        raise RuntimeError("a listener with a bug")

    ledger.subscribe(broken)  # must not stop the generation or the other listener

    gid = ledger.start(source="chat", model="m", prompt_tokens=30, cached_prompt_tokens=10)
    for produced in (1, 2, 5):
        ledger.progress(gid, produced)
    ledger.finish(gid, completion_tokens=6, finish_reason="stop", prompt_tokens=32)

    assert [e.kind for e in events] == ["started", "progress", "progress", "progress", "finished"]
    total = TokenCounts()
    for event in events:
        total = total + event.delta
    assert total == TokenCounts(32, 10, 6) == events[-1].tokens
    assert events[-1].finish_reason == "stop"

    unsubscribe()
    ledger.finish(
        ledger.start(source="chat", model="m", prompt_tokens=1),
        completion_tokens=0,
        finish_reason="error",
    )
    assert len(events) == 5


def test_breakdowns_by_day_client_and_model(ledger: UsageLedger, clock: ManualClock) -> None:
    def record(at: datetime, source: str, client: str | None, model: str, n: int) -> None:
        clock.wall = at
        gid = ledger.start(source=source, client=client, model=model, prompt_tokens=n)
        ledger.finish(gid, completion_tokens=n, finish_reason="stop")

    record(datetime(2026, 11, 9, 23, 30, tzinfo=UTC), "api", "Continue", "qwen", 10)
    record(datetime(2026, 11, 10, 2, 0, tzinfo=UTC), "api", "Continue", "gemma", 20)
    record(datetime(2026, 11, 10, 15, 0, tzinfo=UTC), "chat", None, "gemma", 40)

    by_day_utc = ledger.by_day(tz=UTC)
    assert {d: t.tokens.total for d, t in by_day_utc.items()} == {
        date(2026, 11, 9): 20,
        date(2026, 11, 10): 120,
    }
    # Five hours west of UTC, 02:00Z on the 10th is still the evening of the 9th.
    by_day_west = ledger.by_day(tz=timezone(timedelta(hours=-5)))
    assert {d: t.tokens.total for d, t in by_day_west.items()} == {
        date(2026, 11, 9): 60,
        date(2026, 11, 10): 80,
    }
    # Half-hour offsets fold exactly too (India, UTC+5:30): 23:30Z on the 9th is the 10th.
    by_day_india = ledger.by_day(tz=timezone(timedelta(hours=5, minutes=30)))
    assert {d: t.tokens.total for d, t in by_day_india.items()} == {date(2026, 11, 10): 140}

    assert {k: t.tokens.total for k, t in ledger.by_client().items()} == {
        ClientKey("api", "Continue"): 60,
        ClientKey("chat", ""): 80,
    }
    assert {k: t.generations for k, t in ledger.by_model().items()} == {"gemma": 2, "qwen": 1}


def test_a_range_holds_what_started_from_since_until_just_before_until(
    ledger: UsageLedger, clock: ManualClock
) -> None:
    for hour in (10, 11, 12):
        clock.wall = datetime(2026, 11, 10, hour, tzinfo=UTC)
        ledger.finish(
            ledger.start(source="chat", model="m", prompt_tokens=hour),
            completion_tokens=0,
            finish_reason="stop",
        )
    since = datetime(2026, 11, 10, 11, tzinfo=UTC)
    until = datetime(2026, 11, 10, 12, tzinfo=UTC)
    assert ledger.totals(since, until).tokens.prompt == 11
    assert ledger.totals(since=since).tokens.prompt == 23
    assert ledger.totals(until=until).tokens.prompt == 21


def test_an_api_generation_without_a_client_is_filed_as_unknown(ledger: UsageLedger) -> None:
    ledger.finish(
        ledger.start(source="api", model="m", prompt_tokens=1),
        completion_tokens=1,
        finish_reason="stop",
    )
    assert list(ledger.by_client()) == [ClientKey("api", "unknown")]


@pytest.mark.parametrize(
    "call",
    [
        lambda ledger: ledger.start(source="web", model="m", prompt_tokens=1),
        lambda ledger: ledger.start(source="chat", model="m", prompt_tokens=-1),
        lambda ledger: ledger.start(
            source="chat", model="m", prompt_tokens=5, cached_prompt_tokens=6
        ),
        lambda ledger: ledger.progress(999, 1),
        lambda ledger: ledger.finish(999, completion_tokens=1, finish_reason="stop"),
        lambda ledger: ledger.totals(since=datetime(2026, 1, 1)),  # naive: which time zone?
    ],
    ids=[
        "bad-source",
        "negative",
        "cached-above-prompt",
        "progress-unknown",
        "finish-unknown",
        "naive-time",
    ],
)
def test_bad_calls_are_refused(ledger: UsageLedger, call: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        call(ledger)  # type: ignore[operator]


def test_a_generation_is_closed_only_once(ledger: UsageLedger) -> None:
    gid = ledger.start(source="chat", model="m", prompt_tokens=1)
    ledger.progress(gid, 4)
    with pytest.raises(ValueError, match="went down"):
        ledger.progress(gid, 3)
    with pytest.raises(ValueError, match="finish_reason"):
        ledger.finish(gid, completion_tokens=4, finish_reason="done")
    with pytest.raises(ValueError, match="joules"):
        ledger.finish(gid, completion_tokens=4, finish_reason="stop", energy_joules=-1)
    ledger.finish(gid, completion_tokens=4, finish_reason="stop")
    with pytest.raises(ValueError, match="not running"):
        ledger.finish(gid, completion_tokens=4, finish_reason="stop")
    assert ledger.totals().generations == 1


def test_two_threads_recording_at_once_lose_nothing(db_path: Path) -> None:
    ledger = UsageLedger(db_path, checkpoint_interval_s=0.0)  # every progress call writes
    per_thread, tokens_each = 25, 12
    errors: list[BaseException] = []

    def work(source: str) -> None:
        try:
            for _ in range(per_thread):
                gid = ledger.start(source=source, model="m", prompt_tokens=3)
                for produced in range(1, tokens_each + 1):
                    ledger.progress(gid, produced)
                ledger.totals()  # readers run beside the writers
                ledger.finish(gid, completion_tokens=tokens_each, finish_reason="stop")
        except Exception as exc:  # noqa: BLE001 - surfaced below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in ("chat", "api")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        totals = ledger.totals()
        assert totals.generations == 2 * per_thread
        assert totals.tokens == TokenCounts(2 * per_thread * 3, 0, 2 * per_thread * tokens_each)
        assert totals.in_progress == 0
    finally:
        ledger.close()


def test_a_second_ledger_on_the_same_database_sees_the_rows(
    ledger: UsageLedger, db_path: Path
) -> None:
    gid = ledger.start(source="chat", model="m", prompt_tokens=8)
    other = UsageLedger(db_path)
    try:
        # Its own process is alive, so the running row is not taken for an orphan.
        assert other.close_interrupted() == 0
        assert other.totals().in_progress == 1
        ledger.finish(gid, completion_tokens=2, finish_reason="stop")
        assert other.totals().tokens == TokenCounts(8, 0, 2)
    finally:
        other.close()


def test_a_generation_that_fails_keeps_the_tokens_it_had_produced(ledger: UsageLedger) -> None:
    gid = ledger.start(source="api", client="Zed", model="m", prompt_tokens=11)
    ledger.progress(gid, 7)
    ledger.finish(gid, finish_reason="error")
    [row] = ledger.records()
    assert (row.tokens.completion, row.finish_reason) == (7, "error")
