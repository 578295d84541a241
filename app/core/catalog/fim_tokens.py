"""Which tokens of a vocabulary are its fill-in-the-middle tokens, and when a model can do FIM.

One rule for the loaded model (llama.cpp names the tokens) and for a GGUF header read without
loading (``GgufHeader.fim_token_ids``): the ids a header declares win, else the tokens whose
text llama.cpp's loader recognises, so both agree on the same file.
"""

from __future__ import annotations

from collections.abc import Mapping

# The metadata keys declaring each FIM token's id, the current one first (llama.cpp reads both).
FIM_ID_KEYS: Mapping[str, tuple[str, ...]] = {
    "prefix": ("tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id"),
    "suffix": ("tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id"),
    "middle": ("tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id"),
}

# The token texts llama.cpp's loader takes for FIM tokens when no id is declared (Qwen, Granite,
# DeepSeek, CodeLlama, GLM-4.5, Falcon-H1 coders and the plain spellings).
FIM_TEXTS: Mapping[str, frozenset[str]] = {
    "prefix": frozenset(
        (
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        )
    ),
    "suffix": frozenset(
        (
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        )
    ),
    "middle": frozenset(
        (
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        )
    ),
}
ALL_FIM_TEXTS = frozenset().union(*FIM_TEXTS.values())


def has_fim(prefix: int | None, suffix: int | None, middle: int | None) -> bool:
    """A model completes in the middle only with all three tokens: prefix, suffix and middle."""
    return None not in (prefix, suffix, middle)


def fim_ids(
    metadata: Mapping[str, object], texts: Mapping[str, int], vocab_size: int
) -> tuple[int | None, int | None, int | None]:
    """(prefix, suffix, middle) token ids as llama.cpp's loader finds them: a declared id inside
    the vocabulary, else the first token (lowest id) with a recognised text."""
    found: list[int | None] = []
    for role in ("prefix", "suffix", "middle"):
        token: int | None = None
        for key in FIM_ID_KEYS[role]:
            value = metadata.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < vocab_size:
                token = value
        if token is None:
            ids = [texts[text] for text in FIM_TEXTS[role] if text in texts]
            token = min(ids) if ids else None
        found.append(token)
    return found[0], found[1], found[2]
