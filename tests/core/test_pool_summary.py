"""The words the app shows for the model pool: durations, and the picker's choices."""

from __future__ import annotations

from pathlib import Path

from app.core.library.model import LibraryModel
from app.core.pool.summary import ModelChoice, duration_text, model_choices, pool_text


def _library(*names: str) -> list[LibraryModel]:
    return [LibraryModel(n, Path(f"/models/{n}.gguf"), 1, "folder", owned=False) for n in names]


def test_durations_show_the_two_largest_whole_units() -> None:
    assert duration_text(0) == "0 s"
    assert duration_text(59.9) == "59 s"
    assert duration_text(60) == "1 min"
    assert duration_text(200) == "3 min 20 s"
    assert duration_text(3600) == "1 h"
    assert duration_text(7500) == "2 h 5 min"
    assert duration_text(-3) == "0 s"  # a clock that stepped back never shows a negative idle


def test_nothing_loaded_says_so() -> None:
    assert pool_text([]) == "No model loaded"


def test_the_picker_offers_the_library_only_when_models_load_on_request() -> None:
    library = _library("qwen-coder", "Gemma", "bge-small")
    assert model_choices([], library, load_on_request=True) == [
        ModelChoice("bge-small", loaded=False),
        ModelChoice("Gemma", loaded=False),
        ModelChoice("qwen-coder", loaded=False),
    ]
    assert model_choices([], library, load_on_request=False) == []
