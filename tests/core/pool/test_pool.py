"""The model pool on real llama.cpp engines over tiny GGUFs: several models at once, loads on
request, eviction by memory (least recently used, never busy or pinned), keep-alive, context
reloads. Budgets are set from the pool's own figures, so the tests hold on any machine."""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

from app.core.engine.request import GenerationRequest, Sampling
from app.core.errors import (
    EngineBusy,
    InsufficientMemory,
    ModelNotLoaded,
    PoolFull,
    UnknownModel,
)
from app.core.library.model import LibraryModel
from app.core.load_options import LoadOptions
from app.core.pool.budget import estimate_need
from app.core.pool.pool import PooledModel
from tests.core.pool.conftest import Harness

TIMEOUT_S = 60


def _use(harness: Harness, name: str, **kwargs: object) -> None:
    """One request: hold the model, generate two tokens, release."""
    with harness.pool.acquire(name, **kwargs).result(TIMEOUT_S) as held:  # type: ignore[arg-type]
        _generate(held)


def _generate(held: PooledModel) -> int:
    request = GenerationRequest(prompt="hello", max_tokens=2, sampling=Sampling(temperature=0))
    result = held.engine.generate(request).result(TIMEOUT_S)
    assert result.model_id == held.name
    return result.completion_tokens


def _memory(harness: Harness, name: str) -> int:
    (model,) = [m for m in harness.pool.models() if m.name == name]
    return model.memory_bytes


def _need(path: Path, n_ctx: int = 256) -> int:
    """What the pool will judge a load of ``path`` by (the same options it builds)."""
    return estimate_need(LoadOptions(path, n_ctx=n_ctx), None, None).ram_bytes


def test_two_models_serve_at_once_each_on_its_own_engine(harness: Harness) -> None:
    first = harness.pool.acquire("alpha").result(TIMEOUT_S)
    second = harness.pool.acquire("bravo").result(TIMEOUT_S)
    assert first.engine is not second.engine
    assert _generate(first) > 0
    assert _generate(second) > 0
    assert {m.name: m.busy for m in harness.pool.models()} == {"alpha": 1, "bravo": 1}
    first.release()
    second.release()  # the request that ended last
    assert harness.loaded() == ["alpha", "bravo"]
    assert all(m.busy == 0 for m in harness.pool.models())
    # A request naming no model gets the one used last.
    with harness.pool.acquire(None).result(TIMEOUT_S) as default:
        assert default.name == "bravo"


def test_a_request_names_a_loaded_model_by_file_name_or_ollama_tag(harness: Harness) -> None:
    _use(harness, "alpha")
    for name in ("alpha.gguf", "alpha:latest", "ALPHA"):
        with harness.pool.acquire(name).result(TIMEOUT_S) as held:
            assert held.name == "alpha"
    assert len(harness.engines) == 1


def test_the_least_recently_used_idle_model_makes_room(
    harness: Harness, tiny_models: dict[str, Path]
) -> None:
    _use(harness, "alpha")
    _use(harness, "bravo")
    _use(harness, "alpha")  # bravo is now the least recently used
    harness.budget.total_bytes = (
        _memory(harness, "alpha") + _memory(harness, "bravo") + _need(tiny_models["charlie"]) - 1
    )
    _use(harness, "charlie")
    assert harness.loaded() == ["alpha", "charlie"]


def test_a_pinned_model_survives_and_a_busy_one_is_never_evicted(
    harness: Harness, tiny_models: dict[str, Path]
) -> None:
    _use(harness, "alpha")
    _use(harness, "bravo")
    harness.pool.pin("alpha", True)  # alpha is the least recently used, but pinned
    budget = _memory(harness, "alpha") + _memory(harness, "bravo")
    harness.budget.total_bytes = budget + _need(tiny_models["charlie"]) - 1
    _use(harness, "charlie")
    assert harness.loaded() == ["alpha", "charlie"]
    assert [m.pinned for m in harness.pool.models() if m.name == "alpha"] == [True]

    harness.pool.pin("alpha", False)
    with harness.pool.acquire("alpha").result(TIMEOUT_S):  # busy: least recent after charlie
        _use(harness, "charlie")
        harness.budget.total_bytes = (
            _memory(harness, "alpha")
            + _memory(harness, "charlie")
            + _need(tiny_models["bravo"])
            - 1
        )
        _use(harness, "bravo")
        assert harness.loaded() == ["alpha", "bravo"]


def test_a_model_that_cannot_fit_fails_at_once_and_costs_nobody_their_model(
    harness: Harness, tiny_models: dict[str, Path]
) -> None:
    _use(harness, "alpha")
    engines = len(harness.engines)
    need = _need(tiny_models["bravo"])
    # Even with alpha (idle) unloaded, bravo would not fit.
    harness.budget.total_bytes = need - 1
    with pytest.raises(InsufficientMemory) as refused:
        harness.pool.acquire("bravo").result(TIMEOUT_S)
    assert refused.value.needed_bytes == need
    assert refused.value.available_bytes == need - 1
    assert f"{need / 2**20:,.0f} MiB" in refused.value.user_message
    assert "bravo needs" in refused.value.user_message
    assert harness.loaded() == ["alpha"]  # nothing evicted for a load that could not fit
    assert len(harness.engines) == engines  # and no load was attempted


def test_concurrent_requests_for_a_loading_model_share_one_load(harness: Harness) -> None:
    requests = 6
    with ThreadPoolExecutor(requests) as workers:
        futures = list(workers.map(lambda _i: harness.pool.acquire("charlie"), range(requests)))
        held = [future.result(TIMEOUT_S) for future in futures]
    assert len(harness.engines) == 1
    assert {h.engine for h in held} == {harness.engines[0]}
    assert [m.busy for m in harness.pool.models()] == [requests]
    for h in held:
        h.release()
        h.release()  # a second release changes nothing
    assert [m.busy for m in harness.pool.models()] == [0]


def test_requests_waiting_for_a_load_are_bounded(harness: Harness) -> None:
    harness.settings.max_pending = 2
    gate = threading.Event()
    harness.pool._worker.submit(gate.wait)  # the pool thread is busy: the load stays queued
    try:
        asked = [harness.pool.acquire("alpha") for _ in range(3)]
        done, _ = wait(asked, TIMEOUT_S, return_when=FIRST_EXCEPTION)
        (refused,) = done
        assert isinstance(refused.exception(), EngineBusy)
    finally:
        gate.set()
    for future in asked:
        if future is not refused:
            future.result(TIMEOUT_S).release()


def test_keep_alive_zero_unloads_when_the_request_ends(harness: Harness) -> None:
    held = harness.pool.acquire("alpha", keep_alive_s=0).result(TIMEOUT_S)
    assert harness.loaded() == ["alpha"]
    held.release()
    harness.wait_until(lambda: harness.engines[0].model is None)  # its engine closed
    assert not harness.pool.models()


def test_an_idle_model_unloads_when_its_keep_alive_runs_out(harness: Harness) -> None:
    # Long enough to be read back on a busy machine, short enough for the test to wait out.
    _use(harness, "alpha", keep_alive_s=2.0)
    (alpha,) = [m for m in harness.pool.models() if m.name == "alpha"]
    assert alpha.expires_at is not None
    _use(harness, "bravo")  # the settings' keep-alive here: forever
    harness.wait_until(lambda: harness.loaded() == ["bravo"])


def test_unload_waits_for_the_running_request(harness: Harness) -> None:
    held = harness.pool.acquire("alpha").result(TIMEOUT_S)
    harness.pool.unload("alpha").result(TIMEOUT_S)
    assert harness.loaded() == ["alpha"]  # busy: unloaded when its request ends
    assert _generate(held) > 0
    held.release()
    harness.wait_until(lambda: not harness.pool.models())
    harness.pool.unload("bravo").result(TIMEOUT_S)  # not loaded: nothing to do


def test_a_larger_context_reloads_the_model_on_its_engine(harness: Harness) -> None:
    with harness.pool.acquire("alpha").result(TIMEOUT_S) as held:
        assert held.info.n_ctx == 256
    with harness.pool.acquire("alpha", n_ctx=512).result(TIMEOUT_S) as held:
        assert held.info.n_ctx == 512
        assert _generate(held) > 0
    with harness.pool.acquire("alpha", n_ctx=300).result(TIMEOUT_S) as held:
        assert held.info.n_ctx == 512  # a smaller context is served by the loaded one
    assert len(harness.engines) == 1


def test_a_larger_context_that_does_not_fit_keeps_the_loaded_one(
    harness: Harness, tiny_models: dict[str, Path]
) -> None:
    _use(harness, "alpha")
    # A reload gives back what alpha holds; even so, context 2048 needs one byte more.
    harness.budget.total_bytes = _need(tiny_models["alpha"], 2048) - _memory(harness, "alpha") - 1
    with harness.pool.acquire("alpha", n_ctx=2048).result(TIMEOUT_S) as held:
        assert held.info.n_ctx == 256
        assert _generate(held) > 0


def test_with_load_on_request_off_only_loaded_models_serve(harness: Harness) -> None:
    harness.settings.load_on_request = False
    with pytest.raises(ModelNotLoaded, match="load it in Homefire"):
        harness.pool.acquire("alpha").result(TIMEOUT_S)
    with pytest.raises(ModelNotLoaded):
        harness.pool.acquire(None).result(TIMEOUT_S)


def test_the_loaded_model_limit_evicts_the_idle_one(harness: Harness) -> None:
    harness.settings.max_loaded_models = 1
    _use(harness, "alpha")
    _use(harness, "bravo")
    assert harness.loaded() == ["bravo"]
    with harness.pool.acquire("bravo").result(TIMEOUT_S), pytest.raises(PoolFull):
        harness.pool.acquire("charlie").result(TIMEOUT_S)


def test_an_unknown_name_lists_models_that_exist(harness: Harness) -> None:
    with pytest.raises(UnknownModel, match="alpha, bravo") as unknown:
        harness.pool.acquire("delta").result(TIMEOUT_S)
    assert "delta" in unknown.value.user_message
    assert not harness.engines


def test_the_apps_load_uses_the_same_pool_and_rules(
    harness: Harness, tiny_models: dict[str, Path]
) -> None:
    model = LibraryModel("bravo", tiny_models["bravo"], 1, "folder", owned=False)
    info = harness.pool.load(model, LoadOptions(tiny_models["bravo"], n_ctx=512, model_id="bravo"))
    assert info.n_ctx == 512
    assert harness.pool.default() is not None
    harness.budget.total_bytes = 1
    with pytest.raises(InsufficientMemory):
        harness.pool.load(model, LoadOptions(tiny_models["bravo"], n_ctx=4096))
    assert harness.loaded() == ["bravo"]  # a reload that cannot fit keeps the model


def test_closing_ends_every_engine_even_one_whose_unload_is_queued(harness: Harness) -> None:
    _use(harness, "alpha")
    _use(harness, "bravo")
    gate = threading.Event()
    harness.pool._worker.submit(gate.wait)  # the pool thread is busy: unloads queue behind it
    _use(harness, "alpha", keep_alive_s=0)
    _use(harness, "bravo", keep_alive_s=0)
    closing = threading.Thread(target=harness.pool.close)
    closing.start()
    deadline = time.monotonic() + TIMEOUT_S  # a hang guard, not a timing
    while not harness.pool._closed and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    closing.join(TIMEOUT_S)
    assert len(harness.engines) == 2
    assert all(engine.model is None for engine in harness.engines)


def test_a_split_load_counts_only_this_machines_share_of_the_weights(
    tiny_models: dict[str, Path],
) -> None:
    path = next(iter(tiny_models.values()))
    weights = path.stat().st_size
    alone = estimate_need(LoadOptions(path, n_ctx=256), None, None).ram_bytes
    half = estimate_need(
        LoadOptions(path, n_ctx=256, workers=("10.0.0.2:50052",), tensor_split=(1.0, 1.0)),
        None,
        None,
    ).ram_bytes
    by_free_memory = estimate_need(
        LoadOptions(path, n_ctx=256, workers=("10.0.0.2:50052",)), None, None
    ).ram_bytes

    assert half == max(alone - weights // 2, 0)
    assert by_free_memory == max(alone - weights, 0)
