"""Quant names, split shards and the ggml type table."""

from __future__ import annotations

import gguf
import pytest

from app.core.catalog.quants import (
    FILE_TYPE_NAMES,
    GGML_TYPES_BY_ID,
    group_variant_files,
    quant_from_filename,
    quant_quality,
    split_part,
    split_part_name,
)


@pytest.mark.parametrize(
    ("filename", "quant"),
    [
        ("Llama-3.1-8B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("Qwen_Qwen3-4B-Q8_0.gguf", "Q8_0"),
        ("mistral-7b-instruct-v0.3.q4_k_m.gguf", "Q4_K_M"),
        ("gemma-3-270m-it-qat-IQ2_XXS.gguf", "IQ2_XXS"),
        ("model-bf16.gguf", "BF16"),
        ("model-F16.gguf", "F16"),
        ("GLM-4.6-UD-Q2_K_XL-00001-of-00003.gguf", "UD-Q2_K_XL"),
        ("UD-Q3_K_XL/GLM-4.6-UD-Q3_K_XL-00002-of-00004.gguf", "UD-Q3_K_XL"),
        ("BF16/GLM-4.6-00001-of-00015.gguf", "BF16"),
        ("gpt-oss-20b-MXFP4.gguf", "MXFP4"),
        ("gpt-oss-120b-mxfp4-00001-of-00003.gguf", "MXFP4"),
        ("Qwen2.5-Coder-7B-Instruct-Q6_K_L.gguf", "Q6_K_L"),
        ("Qwen3-30B-A3B-Q5_K_M.gguf", "Q5_K_M"),
        ("Qwen2.5-7B-Instruct.gguf", None),
        ("README.md", None),
    ],
)
def test_quant_is_read_from_file_name(filename: str, quant: str | None) -> None:
    assert quant_from_filename(filename) == quant


def test_split_part_parses_index_and_count() -> None:
    part = split_part("GLM-4.6-UD-Q3_K_XL-00002-of-00004.gguf")
    assert part is not None
    assert (part.stem, part.index, part.count) == ("GLM-4.6-UD-Q3_K_XL", 2, 4)
    assert split_part_name(part.stem, 2, 4) == "GLM-4.6-UD-Q3_K_XL-00002-of-00004.gguf"


@pytest.mark.parametrize(
    "filename",
    ["model-Q4_K_M.gguf", "m-00000-of-00003.gguf", "m-00004-of-00003.gguf", "m-1-of-3.gguf"],
)
def test_non_split_or_impossible_shard_numbers_are_not_parts(filename: str) -> None:
    assert split_part(filename) is None


def test_shards_group_into_one_variant_and_missing_parts_are_reported() -> None:
    listing = [
        "README.md",
        "mmproj-F16.gguf",
        "Model-Q4_K_M.gguf",
        "UD-Q3_K_XL/Model-UD-Q3_K_XL-00002-of-00003.gguf",
        "UD-Q3_K_XL/Model-UD-Q3_K_XL-00001-of-00003.gguf",
        "UD-Q3_K_XL/Model-UD-Q3_K_XL-00003-of-00003.gguf",
        "BF16/Model-BF16-00001-of-00002.gguf",
    ]
    variants = group_variant_files(listing)
    assert [v.quant for v in variants] == ["Q4_K_M", "UD-Q3_K_XL", "BF16"]
    single, split, broken = variants
    assert single.files == ("Model-Q4_K_M.gguf",)
    assert single.complete
    assert split.split_count == 3
    assert split.complete
    assert split.first_file == "UD-Q3_K_XL/Model-UD-Q3_K_XL-00001-of-00003.gguf"
    assert split.files[-1].endswith("00003-of-00003.gguf")
    assert broken.missing_parts == (2,)
    assert not broken.complete


def test_ggml_type_table_matches_gguf_py() -> None:
    for type_id, gtype in GGML_TYPES_BY_ID.items():
        reference = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(type_id)]
        assert (gtype.block_size, gtype.type_size) == reference, gtype.name
        assert gguf.GGMLQuantizationType(type_id).name == gtype.name


def test_file_type_names_match_gguf_py() -> None:
    for value, name in FILE_TYPE_NAMES.items():
        assert gguf.LlamaFileType(value).name.removeprefix("MOSTLY_").replace("ALL_", "") == name


def test_bits_per_weight_of_k_quants() -> None:
    assert GGML_TYPES_BY_ID[10].bits_per_weight == pytest.approx(2.625)
    assert GGML_TYPES_BY_ID[14].bits_per_weight == pytest.approx(6.5625)
    assert GGML_TYPES_BY_ID[39].bits_per_weight == pytest.approx(4.25)


def test_quality_orders_quants_from_best_to_worst() -> None:
    names = ["Q2_K", "Q8_0", "IQ4_XS", "Q4_K_M", "Q6_K", "IQ1_S", "F16", "Q3_K_M"]
    ranked = sorted(names, key=lambda n: quant_quality(n).rank_loss)
    assert ranked == ["F16", "Q8_0", "Q6_K", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K", "IQ1_S"]
    assert quant_quality("q8_0").band == "near-lossless"
    assert quant_quality("Q4_K_M").band == "small"
    assert quant_quality("IQ2_XXS").band == "severe"


def test_uploader_suffixes_use_their_base_quant_and_say_so() -> None:
    quality = quant_quality("UD-Q4_K_XL")
    assert quality.base == "Q4_K_M"
    assert quality.kld == quant_quality("Q4_K_M").kld
    assert "Q4_K_M" in quality.basis


def test_unmeasured_quant_is_ranked_by_bits_and_labelled_unknown() -> None:
    quality = quant_quality("MXFP4")
    assert quality.kld is None
    assert quality.band == "unknown"
    assert quant_quality("Q4_K_M").rank_loss < quality.rank_loss < quant_quality("Q3_K_M").rank_loss
