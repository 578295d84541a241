"""The header reader finds a model's FIM tokens as llama.cpp's loader does, without loading it:
by declared ids or by their text, even in a vocabulary too long for the reader to keep."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from unittest import mock

import gguf
import pytest

from app.core.catalog.gguf_header import SMALL_ARRAY_KEEP, read_local_model
from app.core.engine.backend import LlamaBackend
from app.core.engine.fim import supports_fim
from app.core.load_options import LoadOptions
from tests.fixtures import tiny_llama

Vocabulary = Callable[[], tuple[list[str], list[float], list[int]]]
_PLAIN = tiny_llama.vocabulary


def _vocabulary(extra: int, controls: tuple[str, ...]) -> Vocabulary:
    """The tiny vocabulary, ``extra`` filler pieces, then ``controls`` as control tokens."""

    def vocabulary() -> tuple[list[str], list[float], list[int]]:
        tokens, scores, types = _PLAIN()
        for index in range(extra):
            tokens.append(f"filler{index}")
            scores.append(0.0)
            types.append(gguf.TokenType.NORMAL)
        for text in controls:
            tokens.append(text)
            scores.append(0.0)
            types.append(gguf.TokenType.CONTROL)
        return tokens, scores, types

    return vocabulary


def _write(
    path: Path,
    *,
    extra: int = 0,
    controls: tuple[str, ...] = (),
    edit: Callable[[gguf.GGUFWriter], None] | None = None,
) -> Path:
    with mock.patch.object(tiny_llama, "vocabulary", _vocabulary(extra, controls)):
        return tiny_llama.write_tiny_llama(path, edit_metadata=edit)


def _loaded_fim(path: Path) -> tuple[bool, tuple[int | None, int | None, int | None]]:
    backend = LlamaBackend(LoadOptions(model_path=path, n_ctx=256))
    try:
        special = backend.special_tokens()
        ids = (special.fim_prefix, special.fim_suffix, special.fim_middle)
        return supports_fim(special), ids
    finally:
        backend.close()


@pytest.mark.parametrize(
    "controls",
    [
        ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
        ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder2, Granite
        ("<|fim_prefix|>", "<|fim_suffix|>"),  # no middle: no FIM
    ],
)
def test_fim_tokens_past_the_kept_part_of_a_long_vocabulary_are_found(
    tmp_path: Path, controls: tuple[str, ...]
) -> None:
    path = _write(tmp_path / "long-vocab.gguf", extra=SMALL_ARRAY_KEEP, controls=controls)
    header = read_local_model(path)
    assert (header.vocab_size or 0) > SMALL_ARRAY_KEEP
    assert "tokenizer.ggml.tokens" not in header.metadata  # too long to keep
    assert (header.supports_fim, header.fim_tokens) == _loaded_fim(path)
    assert header.supports_fim == (len(controls) == 3)


def test_declared_fim_ids_win_over_token_texts(tmp_path: Path) -> None:
    controls = ("<PRE>", "<SUF>", "<MID>", "<fim_prefix>")

    def declare(writer: gguf.GGUFWriter) -> None:
        vocab = len(_vocabulary(0, controls)()[0])
        # The last token (a FIM text too) is declared the prefix; suffix and middle by text.
        writer.add_uint32("tokenizer.ggml.fim_pre_token_id", vocab - 1)

    path = _write(tmp_path / "declared.gguf", controls=controls, edit=declare)
    header = read_local_model(path)
    assert header.supports_fim
    assert header.fim_tokens == _loaded_fim(path)[1]
    assert header.fim_tokens[0] == (header.vocab_size or 0) - 1


def test_a_vocabulary_without_fim_tokens_has_none(tmp_path: Path) -> None:
    path = _write(tmp_path / "plain.gguf")
    header = read_local_model(path)
    assert header.fim_tokens == (None, None, None) == _loaded_fim(path)[1]
    assert not header.supports_fim


def test_the_default_chat_template_is_kept(tmp_path: Path) -> None:
    header = read_local_model(_write(tmp_path / "chatml.gguf"))
    assert header.chat_template == tiny_llama.CHATML_TEMPLATE
    assert "tokenizer.chat_template" not in header.metadata
