"""The starter model split across this machine and two real ``homefire worker`` processes.

It predicts as the same model loaded here alone; a worker that dies or hangs mid-generation
fails that request with ``WorkerLost``, the model is unloaded, and a reload without it works.
Nothing asserts a model's words: only likelihoods, argmaxes, counts and error types.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from app.core.cluster.backend_process import Deadlines
from app.core.cluster.loader import backend_factory, open_split_backend
from app.core.engine.backend import LlamaBackend, Span
from app.core.engine.engine import Backend, Engine
from app.core.engine.request import GenerationRequest, Sampling
from app.core.errors import WorkerLost
from app.core.load_options import LoadOptions
from tests.fixtures.rpc_workers import WorkerProcess, require_rpc, workers

pytestmark = pytest.mark.real_model

TEXT = (
    "The river runs past the old mill, under the stone bridge and out to the sea. In spring "
    "the water is high and cold; in late summer children wade across it to the far meadow."
)
# A continuation a small model is sure of for many tokens in a row.
GREEDY_PROMPT = "Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday. 1, 2, 3, 4, 5,"
GREEDY_TOKENS = 24
COMPARED_TOKENS = 16
CONFIDENT_LEAD = 0.5
# Counting goes on far past any test's patience, on any CPU.
COUNTING = GenerationRequest(prompt="1, 2, 3, 4, 5, 6,", max_tokens=2000, sampling=Sampling(0.0))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[WorkerProcess]]:
    require_rpc()
    with workers(tmp_path_factory.mktemp("workers"), 2) as started:
        yield started


def _options(model: Path, workers: Sequence[str] = ()) -> LoadOptions:
    return LoadOptions(model, n_ctx=256, parallel=1, n_threads=1, workers=tuple(workers))


def _softmax(logits: Sequence[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


class _Reading:
    """Per position of a token sequence: the log-probability of the next token, the argmax and
    the lead of the top token over the second (teacher-forced, one token per decode)."""

    def __init__(self, backend: Backend, tokens: Sequence[int]) -> None:
        self.log_probs: list[float] = []
        self.argmax: list[int] = []
        self.lead: list[float] = []
        for position, token in enumerate(tokens):
            assert backend.decode([Span(0, position, (token,), True)], None)
            probs = _softmax(backend.logits(0))  # type: ignore[attr-defined]
            ranked = sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:2]
            self.argmax.append(ranked[0])
            self.lead.append(probs[ranked[0]] - probs[ranked[1]])
            if position + 1 < len(tokens):
                self.log_probs.append(math.log(max(probs[tokens[position + 1]], 1e-30)))


def _greedy(backend: Backend, prompt: list[int], count: int) -> list[int]:
    tokens = list(prompt)
    for position, token in enumerate(prompt):
        assert backend.decode([Span(0, position, (token,), True)], None)
    for _ in range(count):
        logits = backend.logits(0)  # type: ignore[attr-defined]
        nxt = max(range(len(logits)), key=logits.__getitem__)
        assert backend.decode([Span(0, len(tokens), (nxt,), True)], None)
        tokens.append(nxt)
    return tokens


def test_the_split_model_predicts_as_the_local_one(
    starter_model: Path, pair: list[WorkerProcess]
) -> None:
    local = LlamaBackend(_options(starter_model))
    try:
        bos = local.special_tokens().bos
        start = [bos] if bos is not None else []
        text = start + local.tokenize(TEXT, special=False)
        prompt = start + local.tokenize(GREEDY_PROMPT, special=False)
        continued = _greedy(local, prompt, GREEDY_TOKENS)
        local.forget(0, 0)
        text_here = _Reading(local, text)
        local.forget(0, 0)
        greedy_here = _Reading(local, continued)
    finally:
        local.close()

    split = open_split_backend(_options(starter_model, [w.address for w in pair]))
    try:
        text_there = _Reading(split, text)
        split.forget(0, 0)
        greedy_there = _Reading(split, continued)
    finally:
        split.close()
    assert all(worker.served_a_client() for worker in pair)  # the layers did go there

    mean_here = sum(text_here.log_probs) / len(text_here.log_probs)
    mean_there = sum(text_there.log_probs) / len(text_there.log_probs)
    print(f"mean log-likelihood (measured): here {mean_here:.5f}, split {mean_there:.5f}")
    assert abs(mean_there - mean_here) <= 0.01 * abs(mean_here)

    # The local greedy continuation, where the local model is sure of it, is the split's too.
    first = len(prompt) - 1  # the position whose logits chose the first generated token
    confident = [
        i for i in range(first, first + COMPARED_TOKENS) if greedy_here.lead[i] > CONFIDENT_LEAD
    ]
    print(f"confident greedy positions compared (measured): {len(confident)} of {COMPARED_TOKENS}")
    assert len(confident) >= 8, "too few confident tokens for the comparison to mean anything"
    assert [greedy_there.argmax[i] for i in confident] == [greedy_here.argmax[i] for i in confident]
    assert greedy_here.argmax[first:-1] == continued[len(prompt) :]  # the reading is greedy's


def _generate_until_lost(engine: Engine, on_first_chunk: threading.Event) -> BaseException:
    future = engine.generate(COUNTING, on_chunk=lambda _text: on_first_chunk.set())
    with pytest.raises(WorkerLost) as caught:
        future.result(timeout=180)
    return caught.value


def _reload_without_and_generate(engine: Engine, model: Path, workers: Sequence[str]) -> None:
    assert engine.model is None  # unloaded cleanly: nothing half-loaded stays behind
    engine.load(_options(model, workers)).result(timeout=180)
    request = GenerationRequest(prompt="Hello", max_tokens=8, sampling=Sampling(0.0))
    result = engine.generate(request).result(timeout=180)
    assert result.completion_tokens > 0


def test_a_worker_killed_mid_generation_fails_the_request_and_a_reload_without_it_works(
    starter_model: Path, pair: list[WorkerProcess], tmp_path: Path
) -> None:
    engine = Engine(backend_factory=backend_factory(Deadlines(call_s=60)))
    try:
        with workers(tmp_path, 1) as (doomed,):
            engine.load(_options(starter_model, [doomed.address, pair[0].address])).result(
                timeout=180
            )
            first_chunk = threading.Event()
            killer = threading.Thread(target=lambda: first_chunk.wait(180) and doomed.kill())
            killer.start()
            lost = _generate_until_lost(engine, first_chunk)
            killer.join()
        assert doomed.address in str(lost)
        assert "unloaded" in str(lost)
        _reload_without_and_generate(engine, starter_model, [pair[0].address])
    finally:
        engine.close()


def test_a_worker_that_stops_answering_is_lost_at_the_step_deadline(
    starter_model: Path, pair: list[WorkerProcess], tmp_path: Path
) -> None:
    engine = Engine(backend_factory=backend_factory(Deadlines(call_s=5)))
    try:
        with workers(tmp_path, 1) as (frozen,):
            engine.load(_options(starter_model, [frozen.address, pair[1].address])).result(
                timeout=180
            )
            first_chunk = threading.Event()
            pauser = threading.Thread(target=lambda: first_chunk.wait(180) and frozen.pause())
            pauser.start()
            lost = _generate_until_lost(engine, first_chunk)
            pauser.join()
            assert frozen.address in str(lost)
            assert "within 5 s" in str(lost)
        _reload_without_and_generate(engine, starter_model, [])
    finally:
        engine.close()
