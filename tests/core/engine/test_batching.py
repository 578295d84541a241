"""Several sequences in one decode: slots, interleaved prompt reads, per-slot prefix reuse."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest

from app.core.engine.backend import grammar_from_json_schema
from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest, Sampling
from app.core.engine.result import GenerationResult
from app.core.errors import EngineBusy
from app.core.load_options import LoadOptions

GREEDY = Sampling(temperature=0.0)
PROMPTS = ("Hello world", "the a is of", "and to the", "Hello the world of a")


def raw(text: str, max_tokens: int, **kwargs: object) -> GenerationRequest:
    return GenerationRequest(
        prompt=text,
        max_tokens=max_tokens,
        sampling=GREEDY,
        **kwargs,  # type: ignore[arg-type]
    )


class Timeline:
    """An engine observer writing down, in order, what the engine thread did per job."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []  # (what, job id, tokens or prompt size)
        self.lock = threading.Lock()
        self.on_progress = lambda job_id, n: None

    def generation_started(self, job_id, request, model_id, prompt_tokens, cached):  # type: ignore[no-untyped-def]
        with self.lock:
            self.events.append(("started", job_id, prompt_tokens))

    def generation_progressed(self, job_id, completion_tokens):  # type: ignore[no-untyped-def]
        with self.lock:
            self.events.append(("token", job_id, completion_tokens))
        self.on_progress(job_id, completion_tokens)

    def generation_finished(self, job_id, result, error):  # type: ignore[no-untyped-def]
        with self.lock:
            self.events.append(("finished", job_id, 0))


@pytest.fixture
def slots_engine(engine: Engine, tiny_model: Path) -> Engine:
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=2048, parallel=4)).result()
    return engine


def test_sequences_in_one_batch_equal_each_sequence_alone(slots_engine: Engine) -> None:
    """No cross-talk: each reply decoded beside three others is the reply decoded alone.

    The tiny model has F32 weights and every prompt here fits one 256-cell block of the KV
    cache, so a batched step computes each sequence's logits with the same kernels and the same
    attention length as a step alone: the check can be exact. (On a quantized model, batch-size
    dependent kernels may round differently; the starter-model test compares leading tokens.)
    """
    alone = [slots_engine.generate(raw(p, 24)).result().text for p in PROMPTS]
    timeline = Timeline()
    slots_engine.add_observer(timeline)
    futures = [slots_engine.generate(raw(p, 24)) for p in PROMPTS]
    together = [f.result(30).text for f in futures]
    assert together == alone
    # They really shared the steps: all four started before the first one finished.
    first_finish = next(i for i, e in enumerate(timeline.events) if e[0] == "finished")
    assert sum(1 for e in timeline.events[:first_finish] if e[0] == "started") == 4


def test_a_long_prompt_is_read_in_chunks_between_a_running_streams_tokens(
    slots_engine: Engine,
) -> None:
    timeline = Timeline()
    slots_engine.add_observer(timeline)
    running_started = threading.Event()
    timeline.on_progress = lambda job_id, n: running_started.set() if n >= 3 else None
    running = slots_engine.generate(raw("Hello world", 300))
    assert running_started.wait(30)
    timeline.on_progress = lambda job_id, n: None
    long_prompt = "Hello world the a " * 300  # about 1,200 tokens: three 512-token chunks
    reader = slots_engine.generate(raw(long_prompt, 2))
    reader.result(60)
    running.result(60)
    with timeline.lock:
        events = list(timeline.events)
    read_id = next(job for what, job, size in events if what == "started" and size > 1000)
    run_id = next(job for what, job, _ in events if what == "started" and job != read_id)
    start = next(i for i, (what, job, _) in enumerate(events) if job == read_id)
    first_token = next(
        i for i, (what, job, _) in enumerate(events) if job == read_id and what != "started"
    )
    between = [e for e in events[start:first_token] if e[0] == "token" and e[1] == run_id]
    # One decode step per prompt chunk, and the running stream got a token in each of them.
    assert len(between) >= 2


def test_cancelling_a_long_prompt_read_frees_its_slot_and_spares_the_others(
    slots_engine: Engine,
) -> None:
    others = [slots_engine.generate(raw(p, 40)) for p in PROMPTS[:2]]
    cancel = CancelToken()
    timeline = Timeline()
    slots_engine.add_observer(timeline)

    def cancel_once_reading(job_id: int, n: int) -> None:
        with timeline.lock:
            reading = any(e[0] == "started" and e[2] > 1000 for e in timeline.events)
        if reading:
            cancel.cancel()

    timeline.on_progress = cancel_once_reading
    reader = slots_engine.generate(raw("Hello world the a " * 300, 50), cancel=cancel)
    result = reader.result(60)
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens == 0
    for other in others:
        assert other.result(60).completion_tokens == 40
    # The slot is free again and the model still answers.
    assert slots_engine.generate(raw("Hello", 3)).result(30).completion_tokens == 3


def test_the_queue_beyond_the_slots_is_bounded(slots_engine: Engine) -> None:
    release = threading.Event()
    entered = threading.Event()

    def block(_text: str) -> None:
        entered.set()
        release.wait(10)

    held = [slots_engine.generate(raw("Hello", 3), on_chunk=block)]
    assert entered.wait(10)
    # The fixture's engine allows 4 waiting beyond the 4 slots: 8 in all.
    held += [slots_engine.generate(raw("Hello", 2)) for _ in range(7)]
    with pytest.raises(EngineBusy):
        slots_engine.generate(raw("Hello", 2))
    usage = slots_engine.slot_usage
    assert usage.slots == 4
    release.set()
    for future in held:
        assert future.result(30).finish_reason == "length"
    assert slots_engine.pending == 0


def test_a_request_goes_to_the_slot_holding_its_prefix(slots_engine: Engine) -> None:
    futures: list[Future[GenerationResult]] = [
        slots_engine.generate(raw(p * 6, 4)) for p in PROMPTS
    ]
    for future in futures:
        future.result(30)
    # Each slot now holds one prompt; a longer version of the third lands in its slot.
    extended = slots_engine.generate(raw(PROMPTS[2] * 6 + " Hello", 4)).result(30)
    held = slots_engine.count_tokens(raw(PROMPTS[2] * 6, 1)).result()
    assert extended.cached_prompt_tokens >= held - 1


def test_a_grammar_sequence_beside_free_ones_stays_valid(engine: Engine, tmp_path: Path) -> None:
    from tests.server.tiny_coder import write_tiny_coder

    model = write_tiny_coder(tmp_path / "tiny-coder.gguf")
    engine.load(LoadOptions(model_path=model, n_ctx=512, parallel=3)).result()
    grammar = grammar_from_json_schema(
        {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    free = [
        engine.generate(GenerationRequest(prompt="x", max_tokens=30, sampling=Sampling(seed=s)))
        for s in (1, 2)
    ]
    constrained = engine.generate(
        GenerationRequest(prompt="x", grammar=grammar, max_tokens=60, sampling=Sampling(seed=4))
    ).result(60)
    assert isinstance(json.loads(constrained.text)["n"], int)
    assert all(f.result(60).completion_tokens > 0 for f in free)


@pytest.mark.real_model
def test_starter_model_replies_beside_others_match_replies_alone(
    engine: Engine, starter_model: Path
) -> None:
    """No cross-talk on the real (Q4_K_M) starter model, robust to batch-size rounding.

    llama.cpp's quantized CPU kernels take another path for a batch of several rows than for
    one (activations quantized per batch, tiled and repacked matrix products), which can round
    a logit differently; at a near-tie greedy decoding then picks another token and the texts
    part from there on (seen here after about ten tokens). A mixed-up batch (a sequence reading
    another's KV cells, positions or logits) instead changes a reply from its first tokens, as
    the exact tiny-model test above would show. So the prompts have continuations the model is
    sure of, and each reply decoded beside three others must start like the same prompt decoded
    alone: its first 24 characters (five tokens or more).
    """
    engine.load(LoadOptions(model_path=starter_model, n_ctx=1024, parallel=4)).result()
    # Continuations the model is sure of: no near-tie early on for rounding to flip.
    prompts = (
        "1, 2, 3, 4, 5, 6,",
        "Monday, Tuesday, Wednesday,",
        "def fibonacci(n):",
        "Water boils at",
    )
    alone = [engine.generate(raw(p, 24)).result(120).text for p in prompts]
    futures = [engine.generate(raw(p, 24)) for p in prompts]
    together = [f.result(120).text for f in futures]
    for single, batched in zip(alone, together, strict=True):
        shared = next(
            (i for i, (a, b) in enumerate(zip(single, batched, strict=False)) if a != b),
            min(len(single), len(batched)),
        )
        assert shared >= min(24, len(single)), (single, batched)
