"""Hostile GGUF files are refused by our reader before llama.cpp sees them, and the app lives on.

Each file here has crashed llama.cpp's loader (or a GGUF reader) somewhere: had it reached
``llama_model_load``, an ``abort()`` would have ended this test process, not failed a test.
After each refusal the model loaded before is still loaded and still answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.engine.result import ModelInfo
from app.core.errors import InvalidModelFile
from app.core.library.model import LibraryModel
from app.core.load_options import LoadOptions
from app.core.services import AppServices
from tests.fixtures.hostile_gguf import (
    METADATA_DEFECTS,
    RAW_DEFECTS,
    write_truncated,
    write_with_defect,
)
from tests.fixtures.tiny_llama import write_tiny_llama


def _model(path: Path) -> LibraryModel:
    return LibraryModel(name=path.stem, path=path, size_bytes=1, source="file", owned=False)


def _load(services: AppServices, path: Path) -> ModelInfo:
    return services.load_model(_model(path), LoadOptions(path, n_ctx=256))


@pytest.fixture(scope="module")
def services(tiny_model: Path) -> Iterator[AppServices]:
    services = AppServices.create()
    _load(services, tiny_model)
    yield services
    services.close()


def _refused_and_still_serving(services: AppServices, bad: Path) -> InvalidModelFile:
    with pytest.raises(InvalidModelFile) as refused:
        _load(services, bad)
    assert "is not a usable GGUF file" in refused.value.user_message
    request = GenerationRequest(
        messages=(ChatMessage("user", "Hello"),), max_tokens=3, sampling=Sampling(temperature=0)
    )
    result = services.pool.default().engine.generate(request).result(timeout=60)
    assert result.prompt_tokens > 0
    assert result.finish_reason in ("length", "stop")
    return refused.value


@pytest.mark.parametrize("defect", sorted(METADATA_DEFECTS))
def test_abort_triggers_are_refused(services: AppServices, tmp_path: Path, defect: str) -> None:
    bad = write_with_defect(tmp_path / "bad.gguf", defect)
    error = _refused_and_still_serving(services, bad)
    assert METADATA_DEFECTS[defect][1] in error.user_message


@pytest.mark.parametrize("defect", sorted(RAW_DEFECTS))
def test_overflowing_counts_and_sizes_are_refused(
    services: AppServices, tmp_path: Path, defect: str
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(RAW_DEFECTS[defect])
    _refused_and_still_serving(services, bad)


@pytest.mark.parametrize("keep", [4, 24, 1000, -1000, -1])
def test_truncated_files_are_refused(
    services: AppServices, tiny_model: Path, tmp_path: Path, keep: int
) -> None:
    size = tiny_model.stat().st_size
    bad = write_truncated(tmp_path / "cut.gguf", tiny_model, keep if keep > 0 else size + keep)
    error = _refused_and_still_serving(services, bad)
    assert "truncated" in error.user_message


def test_the_unchanged_recipe_loads(services: AppServices, tmp_path: Path) -> None:
    # The refusals above are about each defect, not about the fixture they are written from.
    info = _load(services, write_tiny_llama(tmp_path / "ok.gguf"))
    assert info.architecture == "llama"
