"""Quantisation names, ggml tensor types, split-file names and the quality each quant costs.

Sources (summarised in docs/memory-fit.md): ggml block sizes (ggml.h / gguf-py),
whole-file bits per weight and ΔPPL from llama.cpp's ``tools/quantize`` README and
``quantize.cpp`` (Llama-3.1-8B / Llama-3-8B), mean KL-divergence vs FP16 from the llama.cpp
perplexity README "LLaMA 3 8b Scoreboard". Quality figures are measured on one model family:
newer, more-trained models lose more per bit and bigger models lose less, so they rank quants,
they do not promise a number for another model.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

# ---------------------------------------------------------------------------------------------
# ggml tensor types: id -> (name, elements per block, bytes per block).
# Hard-coded rather than read from the gguf package so that the header parser can reject an
# unknown id in a hostile file without depending on which gguf-py version is installed; a test
# checks this table against gguf-py's.


@dataclass(frozen=True)
class GgmlType:
    type_id: int
    name: str
    block_size: int
    type_size: int

    @property
    def bits_per_weight(self) -> float:
        return self.type_size * 8 / self.block_size

    def nbytes(self, n_elements: int) -> int:
        """Bytes of a tensor of ``n_elements`` (rows are whole blocks in valid files)."""
        return n_elements // self.block_size * self.type_size


_GGML_TYPES: tuple[GgmlType, ...] = (
    GgmlType(0, "F32", 1, 4),
    GgmlType(1, "F16", 1, 2),
    GgmlType(2, "Q4_0", 32, 18),
    GgmlType(3, "Q4_1", 32, 20),
    GgmlType(6, "Q5_0", 32, 22),
    GgmlType(7, "Q5_1", 32, 24),
    GgmlType(8, "Q8_0", 32, 34),
    GgmlType(9, "Q8_1", 32, 40),
    GgmlType(10, "Q2_K", 256, 84),
    GgmlType(11, "Q3_K", 256, 110),
    GgmlType(12, "Q4_K", 256, 144),
    GgmlType(13, "Q5_K", 256, 176),
    GgmlType(14, "Q6_K", 256, 210),
    GgmlType(15, "Q8_K", 256, 292),
    GgmlType(16, "IQ2_XXS", 256, 66),
    GgmlType(17, "IQ2_XS", 256, 74),
    GgmlType(18, "IQ3_XXS", 256, 98),
    GgmlType(19, "IQ1_S", 256, 50),
    GgmlType(20, "IQ4_NL", 32, 18),
    GgmlType(21, "IQ3_S", 256, 110),
    GgmlType(22, "IQ2_S", 256, 82),
    GgmlType(23, "IQ4_XS", 256, 136),
    GgmlType(24, "I8", 1, 1),
    GgmlType(25, "I16", 1, 2),
    GgmlType(26, "I32", 1, 4),
    GgmlType(27, "I64", 1, 8),
    GgmlType(28, "F64", 1, 8),
    GgmlType(29, "IQ1_M", 256, 56),
    GgmlType(30, "BF16", 1, 2),
    GgmlType(34, "TQ1_0", 256, 54),
    GgmlType(35, "TQ2_0", 256, 66),
    GgmlType(39, "MXFP4", 32, 17),
)
GGML_TYPES_BY_ID: dict[int, GgmlType] = {t.type_id: t for t in _GGML_TYPES}
GGML_TYPES_BY_NAME: dict[str, GgmlType] = {t.name: t for t in _GGML_TYPES}


def ggml_type(type_id: int) -> GgmlType | None:
    return GGML_TYPES_BY_ID.get(type_id)


# llama.cpp's ``general.file_type`` (enum llama_ftype) -> the quant name uploaders use.
FILE_TYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}


def file_type_name(file_type: int | None) -> str | None:
    return None if file_type is None else FILE_TYPE_NAMES.get(file_type)


# ---------------------------------------------------------------------------------------------
# Quality per quant name.

QualityBand = Literal[
    "lossless", "near-lossless", "small", "noticeable", "large", "severe", "unknown"
]


@dataclass(frozen=True)
class QuantQuality:
    """What a quant costs; ``kld``: mean KL-divergence vs FP16, Llama-3-8B (None: unmeasured)."""

    name: str  # the name asked about, normalised ("UD-Q4_K_XL")
    base: str  # the llama.cpp quant the figures are for ("Q4_K_M")
    file_bpw: float | None  # whole-file bits per weight (embeddings/output included)
    kld: float | None
    delta_ppl: float | None  # wikitext perplexity increase vs FP16 on Llama-3-8B
    band: QualityBand
    basis: str  # where the figures come from, shown next to them

    @property
    def rank_loss(self) -> float:
        """A number to sort by (lower = better quality); unmeasured quants rank by bpw."""
        if self.kld is not None:
            return self.kld
        if self.file_bpw is not None:
            return _kld_from_bpw(self.file_bpw)
        return 10.0


_README = "llama.cpp quantize README + KLD scoreboard (Llama-3-8B)"
_BPW_ONLY = "ggml block size; quality not measured, ranked by bits per weight"

# name -> (whole-file bpw on Llama-3.1-8B, KLD, ΔPPL). Whole-file bpw for Q4_0/Q4_1/Q5_0/Q5_1 is
# the tensor bpw plus the ~0.15 that Q6_K embeddings add in the README's other rows (est.).
_QUALITY: dict[str, tuple[float | None, float | None, float | None]] = {
    "F32": (32.0, 0.0, 0.0),
    "F16": (16.0, 0.0, 0.002),
    "BF16": (16.0, 0.000025, -0.005),
    "Q8_0": (8.50, 0.0014, 0.003),
    "Q6_K": (6.56, 0.0055, 0.022),
    "Q5_K_M": (5.70, 0.0108, 0.057),
    "Q5_K_S": (5.57, 0.0166, 0.105),
    "Q5_1": (6.15, 0.0180, 0.106),
    "Q5_0": (5.65, 0.0222, 0.132),
    "Q4_K_M": (4.89, 0.0313, 0.175),
    "Q4_K_S": (4.67, 0.0431, 0.269),
    "IQ4_NL": (4.68, 0.0357, None),
    "IQ4_XS": (4.46, 0.0363, None),
    "Q4_1": (5.15, 0.0717, 0.451),
    "Q4_0": (4.65, 0.0719, 0.469),
    "Q3_K_L": (4.30, 0.0872, 0.556),
    "Q3_K_M": (3.91, 0.1019, 0.657),
    "IQ3_M": (3.76, 0.1025, None),
    "IQ3_S": (3.66, 0.1113, None),
    "IQ3_XS": (3.50, 0.1387, None),
    "IQ3_XXS": (3.25, 0.1836, None),
    "Q3_K_S": (3.64, 0.228, 1.63),
    "IQ2_M": (2.93, 0.326, None),
    "Q2_K": (3.16, 0.445, 3.52),
    "Q2_K_S": (2.97, 0.403, 3.18),
    "IQ2_S": (2.74, 0.439, None),
    "IQ2_XS": (2.59, 0.546, None),
    "IQ2_XXS": (2.38, 0.812, None),
    "IQ1_M": (2.15, 1.39, None),
    "IQ1_S": (2.00, 2.25, None),
    # Native 4-bit training format of gpt-oss: the released weights *are* MXFP4, so no loss
    # against what the authors shipped; not comparable with the Llama-3 KLD figures.
    "MXFP4": (4.25, None, None),
    "MXFP4_MOE": (4.25, None, None),
    "TQ1_0": (1.69, None, None),
    "TQ2_0": (2.06, None, None),
}

# Uploader suffixes that are not llama.cpp quant names -> the llama.cpp quant they build on.
# bartowski's *_L/*_XL keep Q8_0 embeddings/output; Unsloth's UD-* upcast important layers, so
# both are at least as good as the base (their own figures are not published per model).
_ALIASES: dict[str, str] = {
    "Q8_K_XL": "Q8_0",
    "Q6_K_XL": "Q6_K",
    "Q6_K_L": "Q6_K",
    "Q6_K_M": "Q6_K",
    "Q5_K_XL": "Q5_K_M",
    "Q5_K_L": "Q5_K_M",
    "Q4_K_XL": "Q4_K_M",
    "Q4_K_L": "Q4_K_M",
    "Q4_K": "Q4_K_M",
    "Q3_K_XL": "Q3_K_L",
    "Q3_K": "Q3_K_M",
    "Q2_K_XL": "Q2_K",
    "Q2_K_L": "Q2_K",
    "Q5_K": "Q5_K_M",
    "FP16": "F16",
    "FP32": "F32",
    "Q4_0_4_4": "Q4_0",
    "Q4_0_4_8": "Q4_0",
    "Q4_0_8_8": "Q4_0",
    "IQ4_NL_4_4": "IQ4_NL",
}


def quality_band(kld: float | None) -> QualityBand:
    """UI bands on the mean KL-divergence vs FP16 (bands and examples: docs/memory-fit.md)."""
    if kld is None:
        return "unknown"
    if kld == 0.0:
        return "lossless"
    if kld < 0.01:
        return "near-lossless"
    if kld < 0.05:
        return "small"
    if kld < 0.15:
        return "noticeable"
    if kld < 0.5:
        return "large"
    return "severe"


def _kld_from_bpw(bpw: float) -> float:
    """Rough KLD for an unmeasured quant, interpolated on the measured table by whole-file bpw."""
    points = sorted(
        (b, k) for b, k, _ in _QUALITY.values() if b is not None and k is not None and b < 17
    )
    if bpw <= points[0][0]:
        return points[0][1]
    for (b0, k0), (b1, k1) in itertools.pairwise(points):
        if b0 <= bpw <= b1:
            return k0 + (k1 - k0) * (bpw - b0) / (b1 - b0) if b1 > b0 else min(k0, k1)
    return points[-1][1]


def quant_quality(name: str) -> QuantQuality:
    """Quality figures for a quant name as found in a file name ("UD-Q2_K_XL", "q4_k_m", "Q4")."""
    normalised = normalise_quant_name(name)
    bare = normalised.removeprefix("UD-")
    base = _ALIASES.get(bare, bare)
    figures = _QUALITY.get(base)
    if figures is None:
        gtype = GGML_TYPES_BY_NAME.get(base)
        bpw = gtype.bits_per_weight if gtype is not None else None
        return QuantQuality(normalised, base, bpw, None, None, "unknown", _BPW_ONLY)
    file_bpw, kld, dppl = figures
    basis = _README if kld is not None else _BPW_ONLY
    if base != normalised:
        basis = f"figures of {base} ({basis}); {normalised} is built on it"
    if base.startswith("MXFP4"):
        basis = "native MXFP4 weights (gpt-oss ships in it); loss vs the release not measured"
    return QuantQuality(normalised, base, file_bpw, kld, dppl, quality_band(kld), basis)


def normalise_quant_name(name: str) -> str:
    upper = name.strip().upper()
    if upper.startswith("UD_"):
        upper = "UD-" + upper[3:]
    return upper


# ---------------------------------------------------------------------------------------------
# File names.

_SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# The quant token: preceded by a separator, followed by a separator or the end of the stem.
_QUANT_RE = re.compile(
    r"(?:^|(?<=[-._/]))"
    r"(?P<quant>(?:UD[-_])?(?:I?Q\d(?:_[A-Z0-9]+)*|TQ\d_\d|B?F16|F32|FP16|FP32|MXFP4(?:_MOE)?))"
    r"(?=[-._]|$)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SplitPart:
    """One shard of a split model, ``<stem>-00002-of-00004.gguf``; ``index`` counts from 1."""

    stem: str
    index: int
    count: int


def split_part(filename: str) -> SplitPart | None:
    """The shard numbering of a file name, or None for a single-file model or a malformed one."""
    match = _SPLIT_RE.match(PurePosixPath(filename).name)
    if match is None:
        return None
    index, count = int(match["index"]), int(match["count"])
    if not 1 <= index <= count:
        return None
    return SplitPart(match["stem"], index, count)


def split_part_name(stem: str, index: int, count: int) -> str:
    """llama.cpp's ``llama_split_path`` naming: ``%s-%05d-of-%05d.gguf``."""
    return f"{stem}-{index:05d}-of-{count:05d}.gguf"


def is_projector_file(filename: str) -> bool:
    """Vision projectors (``mmproj-*.gguf``) ride along with a model; they are not variants."""
    return "mmproj" in PurePosixPath(filename).name.lower()


def quant_from_filename(filename: str) -> str | None:
    """The quant in a GGUF file name, upper-cased ("Q4_K_M", "UD-Q2_K_XL", "BF16"), else None.

    Takes the last matching token of the name; falls back to the folder (big quants sit in
    ``UD-Q3_K_XL/…``). Metadata (``general.file_type``) is better when the header is at hand.
    """
    path = PurePosixPath(filename)
    part = split_part(path.name)
    stem = part.stem if part is not None else re.sub(r"\.gguf$", "", path.name, flags=re.IGNORECASE)
    for candidate in (stem, *(p for p in reversed(path.parent.parts))):
        matches = list(_QUANT_RE.finditer(candidate))
        if matches:
            return normalise_quant_name(matches[-1]["quant"].replace("UD_", "UD-"))
    return None


@dataclass(frozen=True)
class VariantFiles:
    """The files of one quant variant in a repo: one file, or every shard of a split model."""

    key: str  # the first file's path for a single file, ``<folder>/<stem>`` for shards
    quant: str | None
    files: tuple[str, ...]  # in shard order
    split_count: int  # 1 for a single file
    missing_parts: tuple[int, ...]  # shard indexes not in the listing

    @property
    def first_file(self) -> str:
        """The path llama.cpp is given; it opens the other shards itself."""
        return self.files[0]

    @property
    def complete(self) -> bool:
        return not self.missing_parts


def group_variant_files(paths: Iterable[str]) -> list[VariantFiles]:
    """Group a repo's GGUF paths into variants (shards together); projectors are left out.

    Order: as first seen in ``paths``. Non-GGUF paths are ignored.
    """
    # key -> {shard index: path}; a single file is its own group keyed by its path.
    groups: dict[tuple[str, str, int], dict[int, str]] = {}
    for path in paths:
        pure = PurePosixPath(path)
        if not pure.name.lower().endswith(".gguf") or is_projector_file(path):
            continue
        part = split_part(pure.name)
        if part is None:
            groups.setdefault(("", path, 1), {1: path})
            continue
        folder = "" if str(pure.parent) == "." else f"{pure.parent}/"
        groups.setdefault((folder, part.stem, part.count), {}).setdefault(part.index, path)
    result: list[VariantFiles] = []
    for (folder, stem, count), parts in groups.items():
        files = tuple(parts[i] for i in sorted(parts))
        missing = tuple(i for i in range(1, count + 1) if i not in parts)
        result.append(
            VariantFiles(f"{folder}{stem}", quant_from_filename(files[0]), files, count, missing)
        )
    return result
