"""A process killed mid-stream (SIGKILL: no cleanup runs) loses at most its last second of tokens.

A real child process records into the database and is killed; the next ledger opened on the
database closes its row once, as interrupted, with the last checkpointed counts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.usage.counts import TokenCounts
from app.core.usage.ledger import UsageLedger

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# The child moves its own monotonic clock so the checkpoints fall where the test expects.
CHILD = r"""
import sys
from pathlib import Path
from app.core.usage.ledger import UsageLedger

clock = [0.0]
ledger = UsageLedger(Path(sys.argv[1]), monotonic=lambda: clock[0])
if sys.argv[2] == "finish-one-first":
    done = ledger.start(source="chat", model="m", prompt_tokens=7)
    ledger.finish(done, completion_tokens=3, finish_reason="stop")
gid = ledger.start(source="api", client="Continue", model="m", prompt_tokens=100,
                   cached_prompt_tokens=40)
clock[0] = 0.5; ledger.progress(gid, 10)   # in memory only
clock[0] = 1.0; ledger.progress(gid, 20)   # checkpointed
clock[0] = 1.5; ledger.progress(gid, 25)   # in memory only: lost with the process
print("streaming", flush=True)
sys.stdin.read()  # stream "forever", until killed
"""


@pytest.fixture
def spawn(db_path: Path) -> Iterator[object]:
    children: list[subprocess.Popen[str]] = []

    def start(mode: str = "one") -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db_path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        line = child.stdout.readline()
        if line.strip() != "streaming":
            child.kill()
            pytest.fail(f"child failed: {child.communicate()[1]}")
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate()


def _kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()  # reap it, so its pid is gone


def test_a_killed_stream_is_recorded_once_with_its_last_checkpoint(
    spawn: object, db_path: Path
) -> None:
    _kill(spawn())  # type: ignore[operator]

    first = UsageLedger(db_path)
    try:
        assert first.close_interrupted() == 1
        [row] = first.records()
    finally:
        first.close()
    assert row.finish_reason == "interrupted"
    assert row.tokens == TokenCounts(prompt=100, cached_prompt=40, completion=20)
    assert row.ended_at is not None
    assert (row.source, row.client) == ("api", "Continue")

    # Opening again changes nothing: closed once, counted once.
    again = UsageLedger.open_at(db_path)
    try:
        assert again.records() == [row]
        assert again.totals().tokens == TokenCounts(100, 40, 20)
        assert again.totals().in_progress == 0
    finally:
        again.close()


def test_a_stream_still_running_in_another_process_is_left_alone(
    spawn: object, db_path: Path
) -> None:
    child = spawn()  # type: ignore[operator]
    ledger = UsageLedger(db_path)
    try:
        assert ledger.close_interrupted() == 0
        totals = ledger.totals()
        assert (totals.in_progress, totals.tokens.completion) == (1, 20)

        _kill(child)
        assert ledger.close_interrupted() == 1
        assert ledger.totals().in_progress == 0
        assert ledger.totals().tokens.completion == 20
    finally:
        ledger.close()


def test_generations_finished_before_the_kill_keep_their_own_ending(
    spawn: object, db_path: Path
) -> None:
    _kill(spawn("finish-one-first"))  # type: ignore[operator]
    ledger = UsageLedger(db_path)
    try:
        ledger.close_interrupted()
        rows = ledger.records()
    finally:
        ledger.close()
    assert [(r.finish_reason, r.tokens.total) for r in rows] == [
        ("stop", 10),
        ("interrupted", 120),
    ]


def test_closing_the_ledger_mid_stream_keeps_the_latest_count(db_path: Path) -> None:
    clock = [0.0]
    ledger = UsageLedger(db_path, monotonic=lambda: clock[0])
    gid = ledger.start(source="chat", model="m", prompt_tokens=5)
    ledger.progress(gid, 9)  # too soon for a checkpoint
    ledger.close()  # a quit that did not wait for the reply

    again = UsageLedger.open_at(db_path)  # same, live process: the row stays open
    try:
        [row] = again.records()
        assert (row.tokens.completion, row.finish_reason) == (9, None)
    finally:
        again.close()
