"""llama.cpp's abort callback stops a long prompt read, and stays out of the way while decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.engine.backend import LlamaBackend
from app.core.engine.request import Sampling
from app.core.load_options import LoadOptions


@pytest.fixture
def backend(tiny_model: Path) -> LlamaBackend:
    loaded = LlamaBackend(LoadOptions(model_path=tiny_model, n_ctx=512))
    yield loaded  # type: ignore[misc]
    loaded.close()


def prompt(backend: LlamaBackend) -> list[int]:
    return backend.tokenize("Hello world " * 40, special=False)


def test_a_cancel_during_the_prompt_read_aborts_it(backend: LlamaBackend) -> None:
    calls = 0

    def abort_after_a_few_checks() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    stream = backend.token_stream(
        prompt(backend), Sampling(temperature=0), abort_after_a_few_checks
    )
    with pytest.raises(RuntimeError):
        next(stream)
    assert calls > 3
    backend.forget_cache()
    # The model still works afterwards.
    again = backend.token_stream(prompt(backend), Sampling(temperature=0), lambda: False)
    assert isinstance(next(again), int)


def test_decoding_does_not_call_the_abort_callback(backend: LlamaBackend) -> None:
    calls: list[int] = []
    stream = backend.token_stream(
        prompt(backend), Sampling(temperature=0), lambda: calls.append(1) is None and False
    )
    next(stream)
    during_prefill = len(calls)
    for _ in range(10):
        next(stream)
    assert during_prefill > 0
    assert len(calls) == during_prefill
