from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine.chat_template import TemplateRenderer
from app.core.engine.engine import Engine
from app.core.load_options import LoadOptions


@pytest.fixture(autouse=True)
def no_engine_thread_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name == "engine" and t.is_alive()]
    assert not left, f"a test left threads running: {left}"


@pytest.fixture(scope="module")
def renderer() -> Iterator[TemplateRenderer]:
    """One warm renderer per test module, as an engine keeps one for its life."""
    with TemplateRenderer() as renderer:
        yield renderer


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = Engine(max_pending=4)
    yield engine
    engine.close()


@pytest.fixture
def tiny_engine(engine: Engine, tiny_model: Path) -> Engine:
    engine.load(LoadOptions(model_path=tiny_model, n_ctx=256, seed=1)).result()
    return engine
