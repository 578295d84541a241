"""llama.cpp's abort callback stops a long prompt read, and stays out of the way while decoding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine.backend import LlamaBackend, Span
from app.core.engine.request import Sampling
from app.core.load_options import LoadOptions


@pytest.fixture
def backend(tiny_model: Path) -> Iterator[LlamaBackend]:
    loaded = LlamaBackend(LoadOptions(model_path=tiny_model, n_ctx=512, parallel=2))
    yield loaded
    loaded.close()


def prompt(backend: LlamaBackend) -> list[int]:
    return backend.tokenize("Hello world " * 40, special=False)


def test_a_cancel_during_the_prompt_read_aborts_it(backend: LlamaBackend) -> None:
    calls = 0

    def abort_after_a_few_checks() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    tokens = prompt(backend)
    assert not backend.decode([Span(0, 0, tokens, True)], abort_after_a_few_checks)
    assert calls > 3
    assert backend.forget(0, 0)
    # The model still works afterwards.
    assert backend.decode([Span(0, 0, tokens, True)], lambda: False)
    sampler = backend.sampler(Sampling(temperature=0), None, tokens)
    assert isinstance(sampler.sample(len(tokens) - 1), int)
    sampler.close()


def test_decoding_does_not_call_the_abort_callback(backend: LlamaBackend) -> None:
    calls: list[int] = []
    tokens = prompt(backend)
    assert backend.decode([Span(0, 0, tokens, True)], lambda: calls.append(1) is None and False)
    during_prefill = len(calls)
    sampler = backend.sampler(Sampling(temperature=0), None, tokens)
    position = len(tokens)
    token = sampler.sample(position - 1)
    for _ in range(10):
        assert backend.decode([Span(0, position, (token,), True)], None)
        position += 1
        token = sampler.sample(0)
    sampler.close()
    assert during_prefill > 0
    assert len(calls) == during_prefill


def test_two_sequences_in_one_decode_each_get_their_logits(backend: LlamaBackend) -> None:
    first = backend.tokenize("Hello world", special=False)
    second = backend.tokenize("the a is", special=False)
    spans = [Span(0, 0, first, True), Span(1, 0, second, True)]
    assert backend.decode(spans, None)
    greedy = [backend.sampler(Sampling(temperature=0), None, ()) for _ in range(2)]
    together = [greedy[0].sample(len(first) - 1), greedy[1].sample(len(first) + len(second) - 1)]
    # Each alone, in a fresh cache.
    alone = []
    for seq in (0, 1):
        backend.forget(seq, 0)
    for tokens in (first, second):
        assert backend.decode([Span(0, 0, tokens, True)], None)
        sampler = backend.sampler(Sampling(temperature=0), None, ())
        alone.append(sampler.sample(len(tokens) - 1))
        sampler.close()
        backend.forget(0, 0)
    for sampler in greedy:
        sampler.close()
    assert together == alone
