"""A model split onto a worker that is lost leaves the pool: listed no more, its loss heard
with the worker's address, and the next request loads it afresh (a real ``homefire worker``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.cluster.backend_process import Deadlines
from app.core.cluster.loader import backend_factory
from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest, Sampling
from app.core.errors import WorkerLost
from app.core.library.library import ModelLibrary
from app.core.library.sources.folders import FolderSource
from app.core.load_options import LoadOptions
from app.core.pool.budget import MemoryBudget
from app.core.pool.pool import ModelPool
from app.core.storage.settings import EngineSettings
from tests.fixtures.rpc_workers import require_rpc, workers

REQUEST = GenerationRequest(prompt="Hello", max_tokens=4, sampling=Sampling(0.0))


@pytest.fixture
def split_pool(tiny_models: dict[str, Path]) -> Iterator[ModelPool]:
    folder = next(iter(tiny_models.values())).parent
    settings = EngineSettings(n_ctx=256, parallel=1, keep_alive_s=-1, memory_margin_mb=0)

    def engine(job_ids: Iterator[int]) -> Engine:
        return Engine(backend_factory=backend_factory(Deadlines(call_s=30)), job_ids=job_ids)

    pool = ModelPool(
        ModelLibrary([FolderSource([folder])]),
        lambda: settings,
        MemoryBudget(margin_bytes=0, total_bytes=None),
        engine_factory=engine,
    )
    try:
        yield pool
    finally:
        pool.close()


def test_a_lost_worker_takes_its_model_out_of_the_pool(
    split_pool: ModelPool, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    require_rpc()
    pool = split_pool
    changed = threading.Condition()
    losses: list[tuple[str, WorkerLost]] = []

    def on_loss(name: str, error: WorkerLost) -> None:
        losses.append((name, error))

    def on_change() -> None:
        with changed:
            changed.notify_all()

    pool.add_loss_listener(on_loss)
    pool.add_listener(on_change)
    model = pool.resolve("alpha")
    with workers(tmp_path, 1) as (doomed,):
        options = LoadOptions(
            tiny_models["alpha"], n_ctx=256, parallel=1, n_threads=1, workers=(doomed.address,)
        )
        pool.load(model, options)
        assert [m.name for m in pool.models()] == ["alpha"]
        doomed.kill()
        with pool.acquire("alpha").result(timeout=60) as held, pytest.raises(WorkerLost):
            held.engine.generate(REQUEST).result(timeout=120)
        with changed:
            assert changed.wait_for(lambda: not pool.models(), 60), "the model stayed listed"
    assert len(losses) == 1
    name, error = losses[0]
    assert name == "alpha"
    assert doomed.address in error.user_message
    # Loaded again on request, on this machine alone.
    with pool.acquire("alpha").result(timeout=120) as again:
        result = again.engine.generate(REQUEST).result(timeout=120)
    assert result.completion_tokens > 0
    assert [m.name for m in pool.models()] == ["alpha"]
