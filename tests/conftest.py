"""Fixtures every test gets: Homefire's files live in a temporary HOMEFIRE_HOME, never the real one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Fuzz budgets: CI runs a small fixed, reproducible set of examples; `make fuzz` the long profile.
# No per-example deadline from hypothesis (a first render starts the fork server); the tests
# assert their own hang bounds.
settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def homefire_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("homefire-home")
    monkeypatch.setenv("HOMEFIRE_HOME", str(home))
    # The Hub is never reached from tests unless a test points HF_ENDPOINT at its loopback server.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf-home"))
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama GGUF with a ChatML template that llama.cpp loads in milliseconds."""
    from tests.fixtures.tiny_llama import write_tiny_llama

    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-chatml.gguf")


@pytest.fixture(scope="session")
def tiny_model_no_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.fixtures.tiny_llama import write_tiny_llama

    return write_tiny_llama(
        tmp_path_factory.mktemp("models") / "tiny-plain.gguf", chat_template=None
    )


@pytest.fixture(scope="session")
def starter_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real starter model (Gemma 3 270M Q4_K_M from PyPI), joined once per test session."""
    from app.core.library.starter import StarterSource

    source = StarterSource(tmp_path_factory.mktemp("starter"))
    (model,) = source.scan()
    return source.prepare(model)
