"""The last model: how the user chose to load it comes back; a damaged record is only a warning."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from app.core.library.last_model import LastModel, LastModelStore
from app.core.load_options import LoadOptions


def test_it_remembers_how_the_user_chose_to_load_not_this_runs_threads_or_seed() -> None:
    chosen = LoadOptions(
        Path("/m/a.gguf"), n_ctx=8192, n_gpu_layers=-1, flash_attn=True, kv_cache_type="q8_0",
        moe_experts_on_cpu_layers=12, n_threads=3, seed=7,
    )  # fmt: skip
    again = LastModel.of("qwen3-4b", chosen).options(Path("/elsewhere/a.gguf"))
    assert again == replace(chosen, model_path=Path("/elsewhere/a.gguf"), n_threads=None, seed=None)


def test_nothing_remembered_yet_is_none(tmp_path: Path) -> None:
    assert LastModelStore(tmp_path / "last_model.json").recall() is None


def test_it_survives_a_restart(tmp_path: Path) -> None:
    last = LastModel(name="qwen3-4b", n_ctx=8192, flash_attn=True, kv_cache_type="q8_0")
    LastModelStore(tmp_path / "last_model.json").remember(last)
    assert LastModelStore(tmp_path / "last_model.json").recall() == last


@pytest.mark.parametrize(
    "content",
    [
        '{"model": {"name": "qwen3-4b", "n_ctx": "lots"}}',
        '{"model": {"name": "qwen3-4b", "n_ctx": 8192, "kv_cache_type": "q3_9"}}',
        '{"model": {"name": "", "n_ctx": 8192}}',
        '{"model": {"name": "qwen3-4b", "n_ctx": 8192, "n_gpu_layers": -7}}',
        '{"model": "qwen3-4b"}',
        "[1, 2]",
        "{not json",
    ],
)
def test_a_damaged_record_is_a_warning_and_no_last_model(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "last_model.json"
    path.write_text(content)
    with caplog.at_level(logging.WARNING):
        assert LastModelStore(path).recall() is None
    assert "last model" in caplog.text
    assert (tmp_path / "last_model.json.corrupt").read_text() == content
