"""The usage ledger: one SQLite row per generation, chat and endpoint alike.

A generation is written when it starts (marked in progress), checkpointed at most about once a
second while it streams, and closed once when it finishes. If the process dies mid-stream, the
next ledger opened on the database closes the orphaned row as ``interrupted`` with its last
checkpointed counts: nothing is counted twice and at most about a second of tokens is lost.

The engine thread and the HTTP thread may both call it. Writes share one connection under a
lock; reads use a second connection (WAL lets them run beside a write), so a big query on the
GUI thread never stalls a streaming reply.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, tzinfo
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Literal, NamedTuple

from app.core.errors import StorageError
from app.core.storage import db
from app.core.storage.paths import AppPaths
from app.core.storage.writer_process import current_process, process_alive
from app.core.usage.clients import UNKNOWN_CLIENT
from app.core.usage.counts import TokenCounts, UsageTotals

log = logging.getLogger(__name__)

Source = Literal["chat", "api"]
FinishReason = Literal["stop", "length", "cancelled", "error"]
SOURCES: tuple[str, ...] = ("chat", "api")
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "cancelled", "error")
INTERRUPTED = "interrupted"
CHECKPOINT_INTERVAL_S = 1.0
# Day breakdowns group rows in 15-minute buckets first: every UTC offset in use is a multiple
# of 15 minutes, so buckets fold into local days exactly, and SQL does the heavy summing.
_BUCKET_S = 900

COMPONENT = "usage"
MIGRATIONS: tuple[db.Migration, ...] = (
    db.Migration(
        1,
        (
            """
            CREATE TABLE usage_generations (
                id INTEGER PRIMARY KEY,
                started_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                ended_at TEXT,
                source TEXT NOT NULL CHECK (source IN ('chat', 'api')),
                client TEXT NOT NULL,
                model TEXT NOT NULL,
                prompt_tokens INTEGER NOT NULL CHECK (prompt_tokens >= 0),
                cached_prompt_tokens INTEGER NOT NULL
                    CHECK (cached_prompt_tokens BETWEEN 0 AND prompt_tokens),
                completion_tokens INTEGER NOT NULL CHECK (completion_tokens >= 0),
                prompt_seconds REAL,
                decode_seconds REAL,
                energy_mj INTEGER CHECK (energy_mj IS NULL OR energy_mj >= 0),
                finish_reason TEXT CHECK (finish_reason IS NULL OR finish_reason IN
                    ('stop', 'length', 'cancelled', 'error', 'interrupted')),
                owner_pid INTEGER NOT NULL,
                owner_started REAL NOT NULL
            )
            """,
            "CREATE INDEX usage_generations_started ON usage_generations (started_at)",
            "CREATE INDEX usage_generations_open ON usage_generations (owner_pid) "
            "WHERE finish_reason IS NULL",
        ),
    ),
)


class ClientKey(NamedTuple):
    source: str
    client: str


@dataclass(frozen=True)
class UsageEvent:
    """What changed: ``tokens`` is the generation's count so far, ``delta`` the news since the
    previous event for it, so a live counter adds ``delta`` to the total it showed."""

    kind: Literal["started", "progress", "finished"]
    generation_id: int
    source: str
    client: str
    model: str
    tokens: TokenCounts
    delta: TokenCounts
    finish_reason: str | None = None


@dataclass(frozen=True)
class GenerationRecord:
    id: int
    started_at: datetime
    ended_at: datetime | None
    source: str
    client: str
    model: str
    tokens: TokenCounts
    prompt_seconds: float | None
    decode_seconds: float | None
    energy_joules: Decimal | None
    finish_reason: str | None


@dataclass
class _Active:
    """A generation this ledger started and has not finished: the live counts live here."""

    id: int
    started_at: datetime
    source: str
    client: str
    model: str
    tokens: TokenCounts
    checkpointed: int
    last_write: float


UsageCallback = Callable[[UsageEvent], None]


class UsageLedger:
    """Open with :meth:`open`; close with :meth:`close`."""

    def __init__(
        self,
        db_path: Path,
        *,
        now: Callable[[], datetime] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
    ) -> None:
        self._path = db_path
        self._now = now or _utc_now
        self._monotonic = monotonic
        self._interval = checkpoint_interval_s
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._active: dict[int, _Active] = {}
        self._subscribers: list[UsageCallback] = []
        self._pid, self._pid_started = current_process()
        self._write = db.connect(db_path)
        try:
            db.migrate(self._write, db_path, COMPONENT, MIGRATIONS)
            self._read = db.connect(db_path)
        except BaseException:
            self._write.close()
            raise

    @classmethod
    def open(cls, paths: AppPaths) -> UsageLedger:
        """The ledger in Homefire's database, with rows orphaned by a killed process closed."""
        return cls.open_at(paths.database_file)

    @classmethod
    def open_at(cls, db_path: Path) -> UsageLedger:
        ledger = cls(db_path)
        try:
            ledger.close_interrupted()
        except BaseException:
            ledger.close()
            raise
        return ledger

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        """Checkpoint replies still running (the next start closes them as interrupted)."""
        with self._lock, self._read_lock:
            for active in self._active.values():
                if active.tokens.completion != active.checkpointed:
                    self._checkpoint(active, self._monotonic())
            self._active.clear()
            self._write.close()
            self._read.close()

    # -- recording -------------------------------------------------------------------------

    def start(
        self,
        *,
        source: Source | str,
        model: str,
        prompt_tokens: int,
        client: str | None = None,
        cached_prompt_tokens: int = 0,
    ) -> int:
        """Record a generation as it starts; returns the id to pass to progress and finish."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        label = (client or "").strip() or ("" if source == "chat" else UNKNOWN_CLIENT)
        tokens = _checked_tokens(prompt_tokens, cached_prompt_tokens, 0)
        started = self._now()
        stamp = _stamp(started)
        with self._lock:
            try:
                with db.transaction(self._write):
                    cursor = self._write.execute(
                        "INSERT INTO usage_generations (started_at, updated_at, source, client, "
                        "model, prompt_tokens, cached_prompt_tokens, completion_tokens, "
                        "owner_pid, owner_started) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                        (
                            stamp,
                            stamp,
                            source,
                            label,
                            model,
                            tokens.prompt,
                            tokens.cached_prompt,
                            self._pid,
                            self._pid_started,
                        ),
                    )
            except sqlite3.Error as exc:
                raise StorageError(f"cannot record usage in {self._path}: {exc}") from exc
            row_id = cursor.lastrowid
            assert row_id is not None
            active = _Active(row_id, started, source, label, model, tokens, 0, self._monotonic())
            self._active[row_id] = active
        self._emit(_event("started", active, tokens))
        return row_id

    def progress(self, generation_id: int, completion_tokens: int) -> None:
        """The generation has produced ``completion_tokens`` so far (a running total).

        Cheap enough to call on every token: subscribers hear every call, the database sees
        at most one checkpoint per interval. A failed checkpoint is logged, not raised, so
        the reply keeps streaming; :meth:`finish` still records the final counts.
        """
        with self._lock:
            active = self._require_active(generation_id)
            if completion_tokens < active.tokens.completion:
                raise ValueError(
                    f"completion_tokens went down ({active.tokens.completion} -> "
                    f"{completion_tokens}); progress takes the running total"
                )
            before = active.tokens
            active.tokens = replace(before, completion=completion_tokens)
            clock = self._monotonic()
            if clock - active.last_write >= self._interval:
                self._checkpoint(active, clock)
        self._emit(_event("progress", active, active.tokens - before))

    def finish(
        self,
        generation_id: int,
        *,
        finish_reason: FinishReason | str,
        completion_tokens: int | None = None,
        prompt_tokens: int | None = None,
        cached_prompt_tokens: int | None = None,
        prompt_seconds: float | None = None,
        decode_seconds: float | None = None,
        energy_joules: Decimal | float | None = None,
    ) -> None:
        """Close the generation once with what it really produced (also after Stop or error).

        ``completion_tokens`` None keeps the last :meth:`progress` count (an error mid-stream);
        ``prompt_tokens``/``cached_prompt_tokens`` override the start values when the engine
        learned better; ``energy_joules`` is None when the energy was not measured.
        """
        if finish_reason not in FINISH_REASONS:
            raise ValueError(
                f"finish_reason must be one of {FINISH_REASONS}, not {finish_reason!r}"
            )
        energy_mj = _millijoules(energy_joules)
        with self._lock:
            active = self._require_active(generation_id)
            before = active.tokens
            tokens = _checked_tokens(
                before.prompt if prompt_tokens is None else prompt_tokens,
                before.cached_prompt if cached_prompt_tokens is None else cached_prompt_tokens,
                before.completion if completion_tokens is None else completion_tokens,
            )
            stamp = _stamp(self._now())
            try:
                with db.transaction(self._write):
                    self._write.execute(
                        "UPDATE usage_generations SET updated_at = ?, ended_at = ?, "
                        "prompt_tokens = ?, cached_prompt_tokens = ?, completion_tokens = ?, "
                        "prompt_seconds = ?, decode_seconds = ?, energy_mj = ?, "
                        "finish_reason = ? WHERE id = ?",
                        (
                            stamp,
                            stamp,
                            tokens.prompt,
                            tokens.cached_prompt,
                            tokens.completion,
                            prompt_seconds,
                            decode_seconds,
                            energy_mj,
                            finish_reason,
                            generation_id,
                        ),
                    )
            except sqlite3.Error as exc:
                raise StorageError(f"cannot record usage in {self._path}: {exc}") from exc
            del self._active[generation_id]
            active.tokens = tokens
        self._emit(_event("finished", active, tokens - before, finish_reason))

    def close_interrupted(self) -> int:
        """Close rows left in progress by processes that are gone; returns how many.

        Rows of a live process (another Homefire serving right now) are left alone.
        """
        with self._lock:
            try:
                owners = self._write.execute(
                    "SELECT DISTINCT owner_pid, owner_started FROM usage_generations "
                    "WHERE finish_reason IS NULL"
                ).fetchall()
                dead = [
                    (pid, started) for pid, started in owners if not process_alive(pid, started)
                ]
                closed = 0
                with db.transaction(self._write):
                    for pid, started in dead:
                        cursor = self._write.execute(
                            "UPDATE usage_generations SET finish_reason = ?, "
                            "ended_at = updated_at WHERE finish_reason IS NULL "
                            "AND owner_pid = ? AND owner_started = ?",
                            (INTERRUPTED, pid, started),
                        )
                        closed += cursor.rowcount
            except sqlite3.Error as exc:
                raise StorageError(f"cannot repair usage in {self._path}: {exc}") from exc
        if closed:
            log.info("closed %d generations interrupted by a process that died", closed)
        return closed

    # -- live updates ----------------------------------------------------------------------

    def subscribe(self, callback: UsageCallback) -> Callable[[], None]:
        """Call ``callback`` on every start, progress and finish, on the recording thread.

        Returns the function that unsubscribes. A GUI relays the event to its own thread.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # -- reading ---------------------------------------------------------------------------

    def totals(self, since: datetime | None = None, until: datetime | None = None) -> UsageTotals:
        """Everything started in ``[since, until)``, including live counts of running replies."""
        groups = self._aggregate((), since, until, lambda _active: ())
        return groups.get((), UsageTotals())

    def by_day(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        tz: tzinfo | None = None,
    ) -> dict[date, UsageTotals]:
        """Per calendar day in ``tz`` (None: this machine's local time), oldest first."""
        buckets = self._aggregate(
            (f"CAST(strftime('%s', started_at) AS INTEGER) / {_BUCKET_S}",),
            since,
            until,
            lambda active: (int(active.started_at.timestamp()) // _BUCKET_S,),
        )
        days: dict[date, UsageTotals] = {}
        for (bucket,), totals in buckets.items():
            moment = datetime.fromtimestamp(_int(bucket) * _BUCKET_S, UTC)
            day = moment.astimezone(tz).date()
            days[day] = days.get(day, UsageTotals()) + totals
        return dict(sorted(days.items()))

    def by_client(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> dict[ClientKey, UsageTotals]:
        groups = self._aggregate(("source", "client"), since, until, lambda a: (a.source, a.client))
        return {ClientKey(str(k[0]), str(k[1])): v for k, v in sorted(groups.items())}

    def by_model(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> dict[str, UsageTotals]:
        groups = self._aggregate(("model",), since, until, lambda a: (a.model,))
        return {str(k[0]): v for k, v in sorted(groups.items())}

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[GenerationRecord]:
        """The rows themselves, oldest first, as stored (running replies at their checkpoint)."""
        where, params = _range_clause(since, until)
        with self._read_lock:
            rows = self._read.execute(
                "SELECT id, started_at, ended_at, source, client, model, prompt_tokens, "
                "cached_prompt_tokens, completion_tokens, prompt_seconds, decode_seconds, "
                f"energy_mj, finish_reason FROM usage_generations WHERE {where} "
                "ORDER BY started_at, id",
                params,
            ).fetchall()
        return [_record(row) for row in rows]

    # -- internals -------------------------------------------------------------------------

    def _aggregate(
        self,
        keys: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        key_of_active: Callable[[_Active], tuple[object, ...]],
    ) -> dict[tuple[object, ...], UsageTotals]:
        # Snapshot the running generations first, then read the table without them: a reply
        # that finishes in between is counted from the snapshot only, never twice.
        with self._lock:
            running = [replace(a) for a in self._active.values()]
        where, params = _range_clause(since, until)
        if running:
            where += f" AND id NOT IN ({','.join('?' * len(running))})"
            params += tuple(a.id for a in running)
        key_columns = "".join(f"{k}, " for k in keys)
        group = f" GROUP BY {', '.join(keys)}" if keys else ""
        sql = (
            f"SELECT {key_columns}count(*), {_sum('prompt_tokens')}, "
            f"{_sum('cached_prompt_tokens')}, {_sum('completion_tokens')}, count(energy_mj), "
            f"{_sum(_measured('prompt_tokens'))}, {_sum(_measured('cached_prompt_tokens'))}, "
            f"{_sum(_measured('completion_tokens'))}, {_sum('energy_mj')}, "
            "total(prompt_seconds), total(decode_seconds), "
            "count(*) - count(finish_reason) "
            f"FROM usage_generations WHERE {where}{group}"
        )
        try:
            with self._read_lock:
                rows = self._read.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read usage from {self._path}: {exc}") from exc
        groups: dict[tuple[object, ...], UsageTotals] = {}
        width = len(keys)
        for row in rows:
            if row[width] == 0:
                continue  # an aggregate without GROUP BY over no rows
            groups[tuple(row[:width])] = _totals_from_row(row[width:])
        for active in running:
            if _in_range(active.started_at, since, until):
                key = key_of_active(active)
                groups[key] = groups.get(key, UsageTotals()) + _totals_of_active(active)
        return groups

    def _checkpoint(self, active: _Active, clock: float) -> None:
        try:
            with db.transaction(self._write):
                self._write.execute(
                    "UPDATE usage_generations SET completion_tokens = ?, updated_at = ? "
                    "WHERE id = ?",
                    (active.tokens.completion, _stamp(self._now()), active.id),
                )
        except sqlite3.Error as exc:
            log.warning("usage checkpoint failed (%s); will retry", exc)
            return
        active.checkpointed = active.tokens.completion
        active.last_write = clock

    def _require_active(self, generation_id: int) -> _Active:
        active = self._active.get(generation_id)
        if active is None:
            raise ValueError(f"generation {generation_id} is not running in this ledger")
        return active

    def _emit(self, event: UsageEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:  # a broken listener must not break a generation
                log.exception("usage subscriber %r failed", callback)


def _event(
    kind: Literal["started", "progress", "finished"],
    active: _Active,
    delta: TokenCounts,
    finish_reason: str | None = None,
) -> UsageEvent:
    return UsageEvent(
        kind,
        active.id,
        active.source,
        active.client,
        active.model,
        active.tokens,
        delta,
        finish_reason,
    )


def _checked_tokens(prompt: int, cached: int, completion: int) -> TokenCounts:
    if min(prompt, cached, completion) < 0:
        raise ValueError("token counts cannot be negative")
    if cached > prompt:
        raise ValueError(f"cached prompt tokens ({cached}) exceed prompt tokens ({prompt})")
    return TokenCounts(prompt, cached, completion)


def _millijoules(joules: Decimal | float | None) -> int | None:
    if joules is None:
        return None
    value = Decimal(str(joules)) * 1000
    if not value.is_finite() or value < 0:
        raise ValueError(f"energy must be a non-negative number of joules, not {joules!r}")
    return int(value.to_integral_value(ROUND_HALF_EVEN))


def _totals_from_row(row: Sequence[object]) -> UsageTotals:
    (count, prompt, cached, completion, measured, m_prompt, m_cached, m_completion) = row[:8]
    energy_mj, prompt_s, decode_s, running = row[8:12]
    return UsageTotals(
        generations=_int(count),
        tokens=TokenCounts(_int(prompt), _int(cached), _int(completion)),
        measured_generations=_int(measured),
        measured=TokenCounts(_int(m_prompt), _int(m_cached), _int(m_completion)),
        energy_joules=Decimal(_int(energy_mj)).scaleb(-3),
        prompt_seconds=float(prompt_s),  # type: ignore[arg-type]
        decode_seconds=float(decode_s),  # type: ignore[arg-type]
        in_progress=_int(running),
    )


def _int(value: object) -> int:
    return int(value)  # type: ignore[call-overload]


def _sum(expression: str) -> str:
    # sum() of integers stays an exact integer (total() would turn it into a float).
    return f"coalesce(sum({expression}), 0)"


def _measured(column: str) -> str:
    return f"CASE WHEN energy_mj IS NOT NULL THEN {column} END"


def _totals_of_active(active: _Active) -> UsageTotals:
    return UsageTotals(generations=1, tokens=active.tokens, in_progress=1)


def _record(row: Sequence[object]) -> GenerationRecord:
    energy_mj = row[11]
    return GenerationRecord(
        id=_int(row[0]),
        started_at=_parse_stamp(str(row[1])),
        ended_at=None if row[2] is None else _parse_stamp(str(row[2])),
        source=str(row[3]),
        client=str(row[4]),
        model=str(row[5]),
        tokens=TokenCounts(_int(row[6]), _int(row[7]), _int(row[8])),
        prompt_seconds=None if row[9] is None else float(row[9]),  # type: ignore[arg-type]
        decode_seconds=None if row[10] is None else float(row[10]),  # type: ignore[arg-type]
        energy_joules=None if energy_mj is None else Decimal(_int(energy_mj)).scaleb(-3),
        finish_reason=None if row[12] is None else str(row[12]),
    )


def _range_clause(since: datetime | None, until: datetime | None) -> tuple[str, tuple[object, ...]]:
    clauses = ["1"]
    params: list[object] = []
    if since is not None:
        clauses.append("started_at >= ?")
        params.append(_stamp(since))
    if until is not None:
        clauses.append("started_at < ?")
        params.append(_stamp(until))
    return " AND ".join(clauses), tuple(params)


def _in_range(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment < until)


# Fixed-width UTC text: sorts as it compares, readable in any SQLite browser, and SQLite's
# own date functions parse it.
_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("usage times must be timezone-aware")
    return moment.astimezone(UTC).strftime(_STAMP_FORMAT)


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=UTC)


def _utc_now() -> datetime:
    return datetime.now(UTC)
