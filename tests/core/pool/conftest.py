from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from app.core.engine.engine import Engine
from app.core.library.library import ModelLibrary
from app.core.library.sources.folders import FolderSource
from app.core.pool.budget import MemoryBudget
from app.core.pool.pool import ModelPool
from app.core.storage.settings import EngineSettings
from tests.fixtures.tiny_llama import write_tiny_llama


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tiny llama GGUFs of different weights in one folder: three library models."""
    folder = tmp_path_factory.mktemp("pool-models")
    return {
        name: write_tiny_llama(folder / f"{name}.gguf", seed=seed)
        for seed, name in enumerate(("alpha", "bravo", "charlie"))
    }


@dataclass
class Harness:
    pool: ModelPool
    budget: MemoryBudget
    settings: EngineSettings
    engines: list[Engine] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def loaded(self) -> list[str]:
        return sorted(m.name for m in self.pool.models())

    def wait_until(self, check: Callable[[], bool], timeout_s: float = 60) -> None:
        """Wait for a pool change that makes ``check`` true (a hang guard, not a timing)."""
        with self.changed:
            assert self.changed.wait_for(check, timeout_s), "the pool never got there"


@pytest.fixture
def harness(tiny_models: dict[str, Path]) -> Iterator[Harness]:
    """A pool over the tiny models with real engines; the budget is what each test sets."""
    folder = next(iter(tiny_models.values())).parent
    settings = EngineSettings(n_ctx=256, parallel=1, keep_alive_s=-1, memory_margin_mb=0)
    budget = MemoryBudget(margin_bytes=0, total_bytes=None)
    engines: list[Engine] = []

    def engine(job_ids: Iterator[int]) -> Engine:
        made = Engine(max_pending=settings.max_pending, job_ids=job_ids)
        engines.append(made)
        return made

    pool = ModelPool(
        ModelLibrary([FolderSource([folder])]),
        lambda: settings,
        budget,
        engine_factory=engine,
    )
    harness = Harness(pool, budget, settings, engines)

    def changed() -> None:
        with harness.changed:
            harness.changed.notify_all()

    pool.add_listener(changed)
    try:
        yield harness
    finally:
        pool.close()
