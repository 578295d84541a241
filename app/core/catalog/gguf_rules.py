"""What llama.cpp's loader assumes of a GGUF, checked before it sees the file.

llama.cpp reads many header values with ``GGML_ASSERT`` or unchecked casts: a file that breaks
one of its assumptions aborts the whole process (release builds too) or reads past a buffer.
Each rule here mirrors one of those assumptions, so such a file becomes an ``InvalidModelFile``
with a sentence saying what is wrong. The limits are llama.cpp's own: a file inside them is one
llama.cpp would accept, so no real model is refused.

Every check returns a problem sentence or None; the header reader turns it into the error.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from app.core.catalog.gguf_header import GgufHeader

# llama.cpp's src/llama-hparams.h, as bundled by llama-cpp-python 0.3.36 (our floor): per-layer
# values live in fixed arrays of LLAMA_MAX_LAYERS entries (a larger block_count wrote past them
# until llama.cpp PR #26051), and load_hparams asserts n_expert <= LLAMA_MAX_EXPERTS (raised
# from 512 to 1024 for Kimi K3).
MAX_LAYERS = 512
MAX_EXPERTS = 1024

TOKEN_LIST_KEY = "tokenizer.ggml.tokens"

# GGUF value type ids.
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = 8, 9, 10, 11, 12
_TYPE_NAMES = [
    "UINT8",
    "INT8",
    "UINT16",
    "INT16",
    "UINT32",
    "INT32",
    "FLOAT32",
    "BOOL",
    "STRING",
    "ARRAY",
    "UINT64",
    "INT64",
    "FLOAT64",
]
_INTEGERS = frozenset({_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _UINT64, _INT64})


class ValueType(NamedTuple):
    """A metadata value's GGUF type; ``item`` is the element type of an array."""

    value: int
    item: int | None = None

    def __str__(self) -> str:
        name = _type_name(self.value)
        return name if self.item is None else f"{name} of {_type_name(self.item)}"


def _type_name(type_id: int) -> str:
    return _TYPE_NAMES[type_id] if 0 <= type_id < len(_TYPE_NAMES) else str(type_id)


# Keys llama.cpp reads through a typed pointer or a typed getter that asserts: the declared type
# must be exactly this one (a UINT8 "scores" array read as float runs 4x past its end; an INT32
# general.alignment trips an assert in gguf.cpp).
_EXACT_TYPES: dict[str, ValueType] = {
    "general.alignment": ValueType(_UINT32),
    "general.architecture": ValueType(_STRING),
    "tokenizer.ggml.model": ValueType(_STRING),
    TOKEN_LIST_KEY: ValueType(_ARRAY, _STRING),
    "tokenizer.ggml.scores": ValueType(_ARRAY, _FLOAT32),
    "tokenizer.ggml.token_type": ValueType(_ARRAY, _INT32),
    "tokenizer.ggml.merges": ValueType(_ARRAY, _STRING),
}
# Architecture keys (``<arch>.<suffix>``) read as one count, or one per layer.
_COUNT_SUFFIXES = (".block_count", ".expert_count", ".expert_used_count")
_PER_LAYER_SUFFIXES = (
    ".attention.head_count",
    ".attention.head_count_kv",
    ".feed_forward_length",
)

# llama-vocab.cpp's default special token ids per tokenizer model (used when the file names none,
# or names one outside the vocabulary): the vocabulary must hold them.
_DEFAULT_SPECIAL_IDS: dict[str, dict[str, int]] = {
    "llama": {"unknown": 0, "bos": 1, "eos": 2},
    "plamo2": {"unknown": 0, "bos": 1, "eos": 2},
    "gpt2": {"bos": 11, "eos": 11},
    "t5": {"padding": 0, "eos": 1, "unknown": 2},
    "bert": {"padding": 0, "unknown": 100, "bos": 101, "seperator": 102, "mask": 103},
}
_SPECIAL_SLOTS = ("bos", "eos", "unknown", "seperator", "padding", "mask")  # GGUF's spelling

# A vocabulary entry that looks like a byte token must be one: llama.cpp parses the hex digits
# of ``<0x..>`` and indexes a 256-entry table with them (``<0x-1>`` wrote out of bounds).
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def check_byte_token(token: str) -> str | None:
    if token.startswith("<0x") and token.endswith(">") and not _BYTE_TOKEN.fullmatch(token):
        return f"{token[:16]!r} looks like a byte token but is not one of <0x00>..<0xFF>"
    return None


def check_value_types(types: dict[str, ValueType]) -> str | None:
    for key, declared in types.items():
        expected = _EXACT_TYPES.get(key)
        if expected is not None and declared != expected:
            return f"{key} must be {expected}, not {declared}"
        if key.endswith(_COUNT_SUFFIXES) and declared.value not in _INTEGERS:
            return f"{key} must be an integer, not {declared}"
        if key.endswith(_PER_LAYER_SUFFIXES):
            per_layer = declared.value == _ARRAY and declared.item in (_INT32, _UINT32)
            if declared.value not in _INTEGERS and not per_layer:
                return f"{key} must be an integer or an array of INT32/UINT32, not {declared}"
    return None


def check_model(header: GgufHeader) -> str | None:
    """The first broken assumption of llama.cpp's loader, or None."""
    for check in (_layers, _experts, _heads, _tensor_layers, _expert_tensors, _vocabulary):
        problem = check(header)
        if problem:
            return problem
    return None


def _arch_int(header: GgufHeader, suffix: str) -> int:
    return header.metadata_int(f"{header.architecture}.{suffix}") or 0


def _layers(header: GgufHeader) -> str | None:
    n_layer = _arch_int(header, "block_count")
    if not 0 <= n_layer <= MAX_LAYERS:
        return f"it declares {n_layer} layers; llama.cpp accepts at most {MAX_LAYERS}"
    for suffix in _PER_LAYER_SUFFIXES:
        key = f"{header.architecture}{suffix}"
        length = header.array_lengths.get(key)
        if length is not None and length != n_layer:
            return f"{key} has {length} entries for {n_layer} layers"
    return None


def _experts(header: GgufHeader) -> str | None:
    n_expert = _arch_int(header, "expert_count")
    n_used = _arch_int(header, "expert_used_count")
    if not 0 <= n_expert <= MAX_EXPERTS:
        return f"it declares {n_expert} experts; llama.cpp accepts at most {MAX_EXPERTS}"
    if not 0 <= n_used <= n_expert:
        return f"it uses {n_used} experts per token out of {n_expert}"
    if n_expert and not n_used:
        return f"it has {n_expert} experts but uses none per token"
    return None


def _heads(header: GgufHeader) -> str | None:
    n_embd = header.embedding_length or 0
    pairs = zip(header.head_count, header.head_count_kv, strict=True)
    for layer, (heads, kv) in enumerate(pairs):
        if heads < 0 or kv < 0:
            return f"layer {layer} has a negative head count"
        if n_embd and heads > n_embd:
            return f"layer {layer} has {heads} attention heads for {n_embd} embedding values"
        if heads and kv > heads:
            return f"layer {layer} has {kv} key/value heads for {heads} attention heads"
    return None


def _tensor_layers(header: GgufHeader) -> str | None:
    n_layer = _arch_int(header, "block_count")
    for tensor in header.tensors:
        if not tensor.name.startswith("blk."):
            continue
        index = tensor.name.split(".", 2)[1]
        if not (index.isascii() and index.isdigit()):
            return f"tensor {tensor.name[:64]!r} has a layer number that is not ASCII digits"
        if int(index) >= n_layer:
            return f"tensor {tensor.name!r} belongs to layer {index} of a {n_layer}-layer model"
    return None


def _expert_tensors(header: GgufHeader) -> str | None:
    n_expert = _arch_int(header, "expert_count")
    for tensor in header.tensors:
        if tensor.is_expert and tensor.shape[-1] != n_expert:
            return (
                f"expert tensor {tensor.name!r} holds {tensor.shape[-1]} experts, "
                f"the header declares {n_expert}"
            )
    return None


def _vocabulary(header: GgufHeader) -> str | None:
    n_vocab = header.array_lengths.get(TOKEN_LIST_KEY)
    if n_vocab is None:
        return None
    for key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        length = header.array_lengths.get(key)
        if length is not None and length != n_vocab:
            return f"{key} has {length} entries for {n_vocab} tokens"
    model = header.metadata.get("tokenizer.ggml.model")
    defaults = _DEFAULT_SPECIAL_IDS.get(model, {}) if isinstance(model, str) else {}
    for slot in _SPECIAL_SLOTS:
        named = header.metadata_int(f"tokenizer.ggml.{slot}_token_id")
        # llama.cpp falls back to the default when the named id is outside the vocabulary.
        token = named if named is not None and 0 <= named < n_vocab else defaults.get(slot)
        if token is not None and token >= n_vocab:
            return f"its {n_vocab}-token vocabulary lacks the {slot} token (id {token})"
    return None
