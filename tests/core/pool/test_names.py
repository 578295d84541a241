"""Names clients send resolve to one library model, in a fixed order, or to a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.errors import AmbiguousModel, UnknownModel
from app.core.library.model import LibraryModel
from app.core.pool.names import SHOWN_NAMES, resolve_name


def _model(name: str, source: str = "homefire", **kwargs: str) -> LibraryModel:
    return LibraryModel(
        name=name,
        path=Path(f"/models/{kwargs.pop('file', name)}.gguf"),
        size_bytes=1,
        source=source,
        owned=False,
        **kwargs,  # type: ignore[arg-type]
    )


LIBRARY = [
    _model("qwen2.5-coder-1.5b-q4_k_m", repo_id="Qwen/Qwen2.5-Coder-1.5B-GGUF", quant="Q4_K_M"),
    _model("qwen2.5-coder-7b-q4_k_m", repo_id="Qwen/Qwen2.5-Coder-7B-GGUF", quant="Q4_K_M"),
    _model("nomic-embed-text:latest", source="ollama", file="sha256-abc"),
    _model("llama3.2:3b", source="ollama", file="sha256-def"),
    _model("gemma-3-270m", source="starter"),
]


@pytest.mark.parametrize(
    ("asked", "found"),
    [
        ("gemma-3-270m", "gemma-3-270m"),
        ("GEMMA-3-270M", "gemma-3-270m"),
        ("Qwen/Qwen2.5-Coder-7B-GGUF:Q4_K_M", "qwen2.5-coder-7b-q4_k_m"),
        ("qwen/qwen2.5-coder-1.5b-gguf:q4_k_m", "qwen2.5-coder-1.5b-q4_k_m"),
        ("nomic-embed-text", "nomic-embed-text:latest"),  # Ollama's implied tag
        ("llama3.2:3b", "llama3.2:3b"),
        ("sha256-def.gguf", "llama3.2:3b"),  # a file name
        ("gemma", "gemma-3-270m"),  # a unique prefix
    ],
)
def test_each_kind_of_name_finds_its_model(asked: str, found: str) -> None:
    assert resolve_name(asked, LIBRARY).name == found


def test_an_exact_name_wins_over_a_longer_one_it_prefixes() -> None:
    library = [*LIBRARY, _model("gemma-3-270m-it")]
    assert resolve_name("gemma-3-270m", library).name == "gemma-3-270m"


def test_an_ambiguous_prefix_lists_the_candidates() -> None:
    with pytest.raises(AmbiguousModel) as ambiguous:
        resolve_name("qwen2.5-coder", LIBRARY)
    assert ambiguous.value.candidates == ["qwen2.5-coder-1.5b-q4_k_m", "qwen2.5-coder-7b-q4_k_m"]
    assert "qwen2.5-coder-7b-q4_k_m" in ambiguous.value.user_message


def test_an_unknown_name_lists_a_few_models_that_exist() -> None:
    library = [_model(f"model-{i:02d}") for i in range(SHOWN_NAMES + 3)]
    with pytest.raises(UnknownModel) as unknown:
        resolve_name("mistral", library)
    message = unknown.value.user_message
    assert "'mistral'" in message
    assert "model-00" in message
    assert f"model-{SHOWN_NAMES:02d}" not in message
    assert "and 3 more" in message


def test_an_empty_name_is_unknown() -> None:
    with pytest.raises(UnknownModel):
        resolve_name("  ", LIBRARY)
