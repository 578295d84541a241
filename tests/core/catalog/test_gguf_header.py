"""The bounded GGUF header reader: real files, split models, and hostile bytes."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from app.core.catalog.gguf_header import (
    MAX_HEADER_BYTES,
    BytesSource,
    read_header,
    read_local_file,
    read_local_model,
)
from app.core.errors import InvalidModelFile
from tests.fixtures.gguf_writer import (
    gguf_string,
    kv_string,
    kv_u32,
    raw_gguf,
    tensor_info,
    write_tiny_model,
)


def test_tiny_model_facts_are_read(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf", n_head_kv=2, vocab=40)
    header = read_local_model(path)
    assert header.architecture == "llama"
    assert header.name == "tiny test model"
    assert header.block_count == 2
    assert header.head_count == (4, 4)
    assert header.head_count_kv == (2, 2)
    assert header.key_length == header.value_length == 16
    assert header.embedding_length == 64
    assert header.context_length == 256
    assert header.vocab_size == 40
    assert header.quant == "F16"
    assert header.has_chat_template
    assert header.sliding_window is None
    assert not any(header.swa_layers)
    expected_params = 64 * 40 * 2 + 2 * (64 + 64 * 64 * 2 + 64 * 32 * 2 + 64 + 3 * 64 * 128) + 64
    assert header.parameter_count == expected_params
    emb = next(t for t in header.tensors if t.name == "token_embd.weight")
    assert (emb.ggml_type, emb.shape, emb.nbytes) == ("F16", (64, 40), 64 * 40 * 2)
    assert header.data_offset + header.tensor_bytes <= path.stat().st_size


def test_per_layer_kv_heads_and_experts(tmp_path: Path) -> None:
    (path,) = write_tiny_model(
        tmp_path / "moe.gguf", n_layers=3, n_head_kv=[2, 1, 2], n_expert=4, n_expert_used=2
    )
    header = read_local_model(path)
    assert header.head_count_kv == (2, 1, 2)
    assert (header.expert_count, header.expert_used_count) == (4, 2)
    experts = [t for t in header.tensors if t.is_expert]
    assert len(experts) == 9
    assert {t.layer for t in experts} == {0, 1, 2}


def test_split_model_is_read_as_one(tmp_path: Path) -> None:
    files = write_tiny_model(tmp_path / "tiny.gguf", split_max_tensors=6)
    assert len(files) > 1
    (tmp_path / "whole").mkdir()
    (whole,) = write_tiny_model(tmp_path / "whole" / "tiny.gguf")
    from_split = read_local_model(files[-1])
    from_whole = read_local_model(whole)
    assert len(from_split.parts) == len(files)
    assert from_split.parameter_count == from_whole.parameter_count
    assert [t.name for t in from_split.tensors] == [t.name for t in from_whole.tensors]
    assert {t.part for t in from_split.tensors} == set(range(len(files)))


def test_split_model_with_a_missing_part_is_refused(tmp_path: Path) -> None:
    files = write_tiny_model(tmp_path / "tiny.gguf", split_max_tensors=6)
    files[1].unlink()
    with pytest.raises(InvalidModelFile, match="missing parts"):
        read_local_model(files[0])


def test_starter_model_facts(starter_model: Path) -> None:
    header = read_local_model(starter_model)
    assert header.architecture == "gemma3"
    assert header.block_count == 18
    assert header.embedding_length == 640
    assert header.head_count == (4,) * 18
    assert header.head_count_kv == (1,) * 18
    assert (header.key_length, header.value_length) == (256, 256)
    assert header.context_length == 32768
    assert header.sliding_window == 512
    # llama.cpp logs is_swa = 0 for layers 5, 11 and 17 of this model (every 6th is global).
    assert [i for i, swa in enumerate(header.swa_layers) if not swa] == [5, 11, 17]
    assert header.vocab_size == 262144
    assert header.quant == "Q4_K_M"
    assert len(header.tensors) == 236
    assert header.parameter_count == 268_098_176
    assert header.data_offset == 6_525_120
    assert header.data_offset + header.tensor_bytes == starter_model.stat().st_size


# --- hostile and broken input ----------------------------------------------------------------


def _fails(data: bytes, match: str) -> None:
    with pytest.raises(InvalidModelFile, match=match):
        read_header(BytesSource(data, "hostile.gguf"))


def test_wrong_magic() -> None:
    _fails(raw_gguf(magic=b"GGML"), "wrong magic")


def test_text_file_is_not_a_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("hello, this is not a model\n")
    with pytest.raises(InvalidModelFile, match="wrong magic"):
        read_local_model(path)


def test_empty_file_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(InvalidModelFile, match="truncated"):
        read_local_model(path)


@pytest.mark.parametrize(
    ("version", "match"), [(1, "version 1"), (99, "version 99"), (3 << 24, "big-endian")]
)
def test_unsupported_versions(version: int, match: str) -> None:
    _fails(raw_gguf(version=version), match)


def test_absurd_tensor_count() -> None:
    _fails(raw_gguf(n_tensors=2**62), "declares")


def test_absurd_kv_count_runs_out_of_bytes() -> None:
    _fails(raw_gguf(n_kv=50_000, kvs=(kv_string("general.architecture", "llama"),)), "truncated")


def test_string_length_past_end() -> None:
    bad = gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("x", 10_000)
    _fails(raw_gguf(kvs=(bad,)), "truncated")


def test_huge_string_length_is_capped_before_reading() -> None:
    bad = gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("x", 2**63)
    _fails(raw_gguf(kvs=(bad,)), "exceeds the cap")


def test_huge_array_is_capped() -> None:
    bad = gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2**40)
    _fails(raw_gguf(kvs=(bad,)), "exceeds the cap")


def test_array_of_many_empty_strings_stops_at_end_of_data() -> None:
    # 60M declared items, each an 8-byte length: the data ends long before.
    bad = gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 60_000_000) + b"\0" * 800
    _fails(raw_gguf(kvs=(bad,)), "truncated")


def test_unknown_value_type() -> None:
    bad = gguf_string("general.architecture") + struct.pack("<I", 77)
    _fails(raw_gguf(kvs=(bad,)), "unknown metadata value type")


def test_missing_architecture() -> None:
    _fails(raw_gguf(kvs=(kv_u32("general.alignment", 32),)), "no general.architecture")


def test_bad_alignment() -> None:
    kvs = (kv_string("general.architecture", "llama"), kv_u32("general.alignment", 3))
    _fails(raw_gguf(kvs=kvs), "alignment")


def test_tensor_with_too_many_dims() -> None:
    kvs = (kv_string("general.architecture", "llama"),)
    info = gguf_string("t") + struct.pack("<I", 9)
    _fails(raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=info), "dimensions")


def test_tensor_with_unknown_type() -> None:
    kvs = (kv_string("general.architecture", "llama"),)
    _fails(
        raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=tensor_info("t", (32,), 250, 0)), "unknown type"
    )


def test_tensor_with_absurd_shape() -> None:
    kvs = (kv_string("general.architecture", "llama"),)
    info = tensor_info("t", (2**39, 2**39), 0, 0)
    _fails(raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=info), "impossible shape")


def test_tensor_data_past_end_of_file_is_truncation() -> None:
    kvs = (kv_string("general.architecture", "llama"),)
    info = tensor_info("t", (1024, 1024), 0, 0)
    _fails(raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=info, tail=b"\0" * 64), "ends past the end")


def test_truncated_real_file(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny.gguf")
    data = path.read_bytes()
    for cut in (3, 20, 200, len(data) // 2, len(data) - 1):
        with pytest.raises(InvalidModelFile):
            read_header(BytesSource(data[:cut]))


def test_hostile_header_reads_in_bounded_memory() -> None:
    # A header that claims a 4 GiB string: the reader must refuse before allocating it.
    bad = gguf_string("general.architecture") + struct.pack("<I", 8) + gguf_string("x", 4 * 2**30)
    tracemalloc.start()
    with pytest.raises(InvalidModelFile):
        read_header(BytesSource(raw_gguf(kvs=(bad,)) + b"\0" * 4096))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < MAX_HEADER_BYTES // 8


# --- what llama.cpp's loader assumes --------------------------------------------------------------


def _kv_array(key: str, item_type: int, items: bytes, count: int) -> bytes:
    return gguf_string(key) + struct.pack("<IIQ", 9, item_type, count) + items


def test_non_ascii_layer_digits_are_refused(tmp_path: Path) -> None:
    kvs = (kv_string("general.architecture", "llama"), kv_u32("llama.block_count", 2))
    info = tensor_info("blk.١.attn_q.weight", (32,), 0, 0)
    _fails(raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=info, tail=bytes(256)), "not ASCII digits")


def test_a_tensor_of_a_layer_past_block_count_is_refused() -> None:
    kvs = (kv_string("general.architecture", "llama"), kv_u32("llama.block_count", 2))
    info = tensor_info("blk.2.attn_q.weight", (32,), 0, 0)
    _fails(raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=info, tail=bytes(256)), "layer 2 of a 2")


@pytest.mark.parametrize(
    ("kvs", "match"),
    [
        ((kv_u32("llama.block_count", 513),), "513 layers; llama.cpp accepts at most 512"),
        ((kv_u32("llama.expert_count", 1025), kv_u32("llama.expert_used_count", 2)), "1025 experts"),
        ((kv_u32("llama.expert_count", 8), kv_u32("llama.expert_used_count", 9)), "9 experts per"),
        ((kv_u32("llama.expert_count", 8),), "uses none"),
        ((kv_u32("llama.expert_used_count", 1),), "1 experts per token out of 0"),
        (
            (kv_u32("llama.block_count", 2), _kv_array("llama.attention.head_count", 5, bytes(12), 3)),
            "3 entries for 2 layers",
        ),
        (
            (kv_u32("llama.block_count", 1), _kv_array("llama.attention.head_count", 0, bytes(1), 1)),
            "INT32/UINT32",
        ),
        (
            (kv_u32("llama.embedding_length", 8), kv_u32("llama.block_count", 1),
             kv_u32("llama.attention.head_count", 9)),
            "9 attention heads for 8",
        ),
        (
            (kv_u32("llama.block_count", 1), kv_u32("llama.attention.head_count", 2),
             kv_u32("llama.attention.head_count_kv", 4)),
            "4 key/value heads for 2",
        ),
        ((kv_string("llama.block_count", "2"),), "must be an integer"),
        ((kv_u32("general.alignment", 32), kv_u32("general.alignment", 32)), "appears twice"),
    ],
)  # fmt: skip
def test_header_values_llama_cpp_would_abort_on(kvs: tuple[bytes, ...], match: str) -> None:
    _fails(raw_gguf(kvs=(kv_string("general.architecture", "llama"), *kvs)), match)


def test_expert_tensors_must_hold_the_declared_experts(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "moe.gguf", n_expert=4, n_expert_used=2)
    assert read_local_model(path).expert_count == 4
    kvs = (
        kv_string("general.architecture", "llama"),
        kv_u32("llama.block_count", 1),
        kv_u32("llama.expert_count", 4),
        kv_u32("llama.expert_used_count", 2),
    )
    info = tensor_info("blk.0.ffn_up_exps.weight", (32, 8, 3), 0, 0)
    _fails(raw_gguf(n_tensors=1, kvs=kvs, tensor_infos=info, tail=bytes(4096)), "holds 3 experts")


def test_vocabulary_arrays_must_match_the_token_count() -> None:
    tokens = _kv_array("tokenizer.ggml.tokens", 8, b"".join(gguf_string(t) for t in "abc"), 3)
    scores = _kv_array("tokenizer.ggml.scores", 6, bytes(8), 2)
    _fails(
        raw_gguf(kvs=(kv_string("general.architecture", "llama"), tokens, scores)),
        "2 entries for 3",
    )


def test_named_special_tokens_outside_a_small_vocabulary_fall_back_to_missing_defaults() -> None:
    tokens = _kv_array("tokenizer.ggml.tokens", 8, b"".join(gguf_string(t) for t in "ab"), 2)
    kvs = (
        kv_string("general.architecture", "llama"),
        kv_string("tokenizer.ggml.model", "gpt2"),
        tokens,
        kv_u32("tokenizer.ggml.bos_token_id", 0),
        kv_u32("tokenizer.ggml.eos_token_id", 70_000),
    )
    _fails(raw_gguf(kvs=kvs), "lacks the eos token")


@pytest.mark.parametrize("token", ["<0x-1>", "<0x100>", "<0xG0>", "<0x>"])
def test_malformed_byte_tokens_are_refused(token: str) -> None:
    entries = [gguf_string("<0x41>"), gguf_string(token)]
    tokens = _kv_array("tokenizer.ggml.tokens", 8, b"".join(entries), 2)
    _fails(raw_gguf(kvs=(kv_string("general.architecture", "llama"), tokens)), "byte token")


def test_wrong_array_item_types_are_refused() -> None:
    tokens = _kv_array("tokenizer.ggml.tokens", 8, b"".join(gguf_string(t) for t in "ab"), 2)
    scores = _kv_array("tokenizer.ggml.scores", 0, bytes(2), 2)
    _fails(
        raw_gguf(kvs=(kv_string("general.architecture", "llama"), tokens, scores)),
        "tokenizer.ggml.scores must be ARRAY of FLOAT32, not ARRAY of UINT8",
    )


def test_int32_alignment_is_refused() -> None:
    bad = gguf_string("general.alignment") + struct.pack("<Ii", 5, 32)
    _fails(raw_gguf(kvs=(kv_string("general.architecture", "llama"), bad)), "UINT32, not INT32")


# --- local headers are parsed once per file version --------------------------------------------


def test_local_headers_are_cached_by_path_size_and_mtime(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny.gguf")
    first = read_local_model(path)
    assert read_local_model(path) is first
    assert read_local_file(path) is not first  # a single-file read is its own entry
    assert read_local_file(path) is read_local_file(path)
    write_tiny_model(path, n_layers=3)  # rewritten: new size and mtime
    assert read_local_model(path).block_count == 3


def test_a_broken_file_is_not_cached_as_broken(tmp_path: Path) -> None:
    path = tmp_path / "later.gguf"
    path.write_bytes(b"GGUF")
    with pytest.raises(InvalidModelFile):
        read_local_model(path)
    write_tiny_model(path)
    assert read_local_model(path).architecture == "llama"
