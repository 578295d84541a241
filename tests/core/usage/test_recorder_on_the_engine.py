"""The engine's generations land in the ledger through UsageRecorder: real llama.cpp, tiny GGUF."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.load_options import LoadOptions
from app.core.usage.energy import NvmlEnergyMeter
from app.core.usage.ledger import ClientKey, UsageLedger
from app.core.usage.recorder import UsageRecorder

from .nvml_double import FakeNvml

GREEDY = Sampling(temperature=0.0, seed=7)


def chat(text: str, max_tokens: int, **kwargs: str) -> GenerationRequest:
    return GenerationRequest(
        messages=(ChatMessage("user", text),), sampling=GREEDY, max_tokens=max_tokens, **kwargs
    )


@pytest.fixture
def engine(tiny_model: Path) -> Iterator[Engine]:
    engine = Engine(max_pending=4)
    try:
        engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, seed=1)).result()
        yield engine
    finally:
        engine.close()


def test_each_generation_is_one_row_with_the_engines_counts(engine: Engine, db_path: Path) -> None:
    ledger = UsageLedger(db_path)
    # One GPU whose counter gains 250 mJ between any two readings.
    meter = NvmlEnergyMeter(FakeNvml([itertools.count(1_000_000, 250)]), [0])
    engine.add_observer(UsageRecorder(ledger, meter))
    try:
        chat_result = engine.generate(chat("Hello world", 12)).result()
        api_result = engine.generate(chat("Hello", 5, source="api", client="Continue")).result()

        cancel = CancelToken()
        stopped: list[int] = []

        def stop_after_three(_text: str) -> None:
            stopped.append(1)
            if len(stopped) == 3:
                cancel.cancel()

        cancelled = engine.generate(chat("Hi", 200), on_chunk=stop_after_three, cancel=cancel)
        cancelled_result = cancelled.result()

        rows = ledger.records()
    finally:
        engine.close()
        ledger.close()

    assert [(r.source, r.client, r.finish_reason) for r in rows] == [
        ("chat", "", "length"),
        ("api", "Continue", "length"),
        ("chat", "", "cancelled"),
    ]
    for row, result in zip(rows, (chat_result, api_result, cancelled_result), strict=True):
        assert row.model == "tiny-chatml"
        assert row.tokens.prompt == result.prompt_tokens
        assert row.tokens.cached_prompt == result.cached_prompt_tokens
        assert row.tokens.completion == result.completion_tokens
        assert row.decode_seconds == result.decode_s
        assert row.energy_joules == Decimal("0.250")
    assert rows[0].tokens.completion == 12
    assert rows[2].tokens.completion < 200


def test_without_a_meter_energy_is_not_measured(engine: Engine, db_path: Path) -> None:
    ledger = UsageLedger(db_path)
    engine.add_observer(UsageRecorder(ledger))
    try:
        engine.generate(chat("Hello", 4, source="api", client="openai-python")).result()
        totals = ledger.totals()
        clients = ledger.by_client()
    finally:
        engine.close()
        ledger.close()
    assert totals.generations == 1
    assert totals.tokens.completion == 4
    assert totals.measured_generations == 0
    assert list(clients) == [ClientKey("api", "openai-python")]


class _HoldFirstStart:
    """Holds the engine thread in the first generation's start until released, so the requests
    submitted meanwhile are queued and join its batch however loaded the machine is."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def generation_started(self, *_args: object) -> None:
        self.release.wait(timeout=30)

    def generation_progressed(self, job_id: int, completion_tokens: int) -> None:
        pass

    def generation_finished(self, *_args: object) -> None:
        pass


def test_sequences_decoded_together_each_get_their_own_row(engine: Engine, db_path: Path) -> None:
    ledger = UsageLedger(db_path)
    engine.add_observer(UsageRecorder(ledger))
    hold = _HoldFirstStart()
    engine.add_observer(hold)
    try:
        futures = [
            engine.generate(chat(text, n, source="api", client=f"client-{n}"))
            for text, n in (("Hello", 6), ("Hello world", 9), ("Hi", 12))
        ]
        hold.release.set()
        results = [f.result() for f in futures]
        rows = ledger.records()
    finally:
        engine.close()
        ledger.close()
    assert max(r.max_concurrent for r in results) > 1, "they shared decode steps"
    by_client = {row.client: row for row in rows}
    for n, result in zip((6, 9, 12), results, strict=True):
        row = by_client[f"client-{n}"]
        assert row.tokens.completion == result.completion_tokens == n
        assert row.tokens.prompt == result.prompt_tokens


def test_a_cache_warm_up_is_not_counted(engine: Engine, db_path: Path) -> None:
    ledger = UsageLedger(db_path)
    engine.add_observer(UsageRecorder(ledger))
    try:
        warm_up = engine.generate(chat("Hello there", 0, source="api", client="curl")).result()
        engine.generate(chat("Hello there", 3, source="api", client="curl")).result()
        totals = ledger.totals()
    finally:
        engine.close()
        ledger.close()
    assert warm_up.completion_tokens == 0
    assert totals.generations == 1
    assert totals.tokens.completion == 3
