"""A bounded reader of GGUF headers: metadata and the tensor table, never the weights.

Hand-written rather than gguf-py's ``GGUFReader`` because that one memory-maps the whole file
(useless for a remote file read by HTTP Range requests) and trusts the counts and lengths a
file declares, so a hostile header can ask it for absurd allocations. Here every count and
length is checked against a cap and against the bytes that exist before anything is read,
and the total header bytes read are capped, so a broken file fails fast with
``InvalidModelFile`` in bounded time and memory.

Beyond the format itself, a parsed header must satisfy what llama.cpp's loader assumes of a
model (``gguf_rules``), so a file built to trip an ``abort()`` in C is refused here instead.

Reads go through ``ByteSource.read_at(offset, size)`` so the same parser serves a local file,
bytes in memory, or a remote reader built on Range requests.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from app.core.catalog.fim_tokens import ALL_FIM_TEXTS, fim_ids, has_fim
from app.core.catalog.gguf_rules import (
    TOKEN_LIST_KEY,
    ValueType,
    check_byte_token,
    check_model,
    check_value_types,
)
from app.core.catalog.quants import (
    GgmlType,
    file_type_name,
    ggml_type,
    split_part,
    split_part_name,
)
from app.core.errors import InvalidModelFile
from app.core.sizes import format_size

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)

# Caps far above any real model (largest vocabularies ~260k tokens, largest tensor tables a
# few thousand entries, chat templates tens of KB) and far below what would hurt.
MAX_TENSORS = 100_000
MAX_KV = 100_000
MAX_STRING_BYTES = 8 * 2**20
MAX_KEY_BYTES = 64 * 2**10
MAX_ARRAY_ITEMS = 64 * 2**20
MAX_NESTED_ARRAYS = 2
MAX_DIMS = 4  # GGML_MAX_DIMS
# The largest real headers are a few MiB (Gemma 3's 262k-token vocabulary: 6.5 MB); 128 MiB is
# twenty times that, and bounds a remote read at 128 Range requests of 1 MiB. Kept metadata is
# a subset of the bytes read, so it also bounds what a parsed header holds in memory.
MAX_HEADER_BYTES = 128 * 2**20
MAX_TOKEN_BYTES = 64 * 2**10  # one vocabulary entry; real ones are a few dozen bytes
SMALL_ARRAY_KEEP = 4096  # arrays longer than this keep only their length (token tables)
READ_CHUNK = 1 * 2**20

# GGUF value types.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING = 8
_ARRAY = 9

Scalar = int | float | bool | str
MetaValue = Scalar | tuple[Scalar, ...]


class ByteSource(Protocol):
    """Random access to a GGUF's bytes. ``read_at`` may return fewer bytes only at the end."""

    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int | None: ...

    def read_at(self, offset: int, size: int) -> bytes: ...


class BytesSource:
    def __init__(self, data: bytes, name: str = "<bytes>") -> None:
        self._data = data
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, size: int) -> bytes:
        return self._data[offset : offset + size]


class FileSource:
    """A local file, read with positioned reads (no mmap, no whole-file read)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            self._size = path.stat().st_size
        except OSError as exc:
            raise InvalidModelFile(f"cannot read {path}: {exc.strerror or exc}") from exc

    @property
    def name(self) -> str:
        return str(self._path)

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, size: int) -> bytes:
        try:
            with self._path.open("rb") as handle:
                return os.pread(handle.fileno(), size, offset)
        except OSError as exc:
            raise InvalidModelFile(f"cannot read {self._path}: {exc.strerror or exc}") from exc


@dataclass(frozen=True)
class TensorInfo:
    name: str
    ggml_type: str  # "Q4_K", "F32", ...
    shape: tuple[int, ...]  # ggml order: ne[0] is the row length
    n_elements: int
    nbytes: int
    offset: int  # from the data section of its part
    part: int = 0  # index of the split part holding it (0 for a single file)

    @property
    def layer(self) -> int | None:
        """``N`` of ``blk.N.*`` tensors; None for token_embd, output, norms outside blocks."""
        if not self.name.startswith("blk."):
            return None
        index = self.name.split(".", 2)[1]
        # ASCII only: str.isdigit() also accepts "١" or "²", which int() reads or rejects.
        return int(index) if index.isascii() and index.isdigit() else None

    @property
    def is_expert(self) -> bool:
        """Routed MoE expert weights (the tensors ``--n-cpu-moe`` keeps in RAM)."""
        return "_exps" in self.name


@dataclass(frozen=True)
class GgufPart:
    name: str
    size: int | None
    data_offset: int
    tensor_count: int


@dataclass(frozen=True)
class GgufHeader:
    """What a GGUF header says about its model (all split parts merged)."""

    version: int
    architecture: str
    metadata: Mapping[str, MetaValue]  # scalars; arrays up to SMALL_ARRAY_KEEP items
    array_lengths: Mapping[str, int]  # every array's length, kept or not
    tensors: tuple[TensorInfo, ...]
    parts: tuple[GgufPart, ...]
    has_chat_template: bool = False
    # Each key's GGUF value type (and array item type), as the first part declares it.
    value_types: Mapping[str, ValueType] = field(default_factory=dict)
    # The default chat template (``tokenizer.chat_template``); named variants are not kept.
    chat_template: str | None = None
    # Vocabulary entries whose text llama.cpp takes for a FIM token, with their ids (kept even
    # when the token table itself is too long to keep).
    fim_token_texts: Mapping[str, int] = field(default_factory=dict)

    # -- general ---------------------------------------------------------------------------
    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return value if isinstance(value, str) else None

    @property
    def data_offset(self) -> int:
        return self.parts[0].data_offset

    @property
    def file_size(self) -> int | None:
        sizes = [p.size for p in self.parts]
        return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def file_type(self) -> int | None:
        return self._int("general.file_type")

    @property
    def quant(self) -> str | None:
        return file_type_name(self.file_type)

    @property
    def vocab_size(self) -> int | None:
        length = self.array_lengths.get("tokenizer.ggml.tokens")
        return length if length is not None else self._arch_int("vocab_size")

    @property
    def fim_tokens(self) -> tuple[int | None, int | None, int | None]:
        """(prefix, suffix, middle) FIM token ids, as the loaded model will name them."""
        return fim_ids(self.metadata, self.fim_token_texts, self.vocab_size or 0)

    @property
    def supports_fim(self) -> bool:
        return has_fim(*self.fim_tokens)

    # -- architecture ----------------------------------------------------------------------
    @property
    def block_count(self) -> int:
        return self._arch_int("block_count") or 0

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def head_count(self) -> tuple[int, ...]:
        return self._per_layer("attention.head_count")

    @property
    def head_count_kv(self) -> tuple[int, ...]:
        """Per layer (a scalar in the file is repeated); defaults to head_count, as llama.cpp."""
        kv = self._per_layer("attention.head_count_kv")
        return kv if any(kv) else self.head_count

    @property
    def key_length(self) -> int | None:
        value = self._arch_int("attention.key_length")
        return value if value is not None else self._default_head_dim()

    @property
    def value_length(self) -> int | None:
        value = self._arch_int("attention.value_length")
        return value if value is not None else self._default_head_dim()

    @property
    def sliding_window(self) -> int | None:
        return self._arch_int("attention.sliding_window")

    @property
    def swa_layers(self) -> tuple[bool, ...]:
        """Which layers use the sliding window (llama.cpp's per-arch pattern when not stored)."""
        n = self.block_count
        window = self.sliding_window
        stored = self.metadata.get(f"{self.architecture}.attention.sliding_window_pattern")
        if isinstance(stored, tuple) and len(stored) == n:
            return tuple(bool(v) for v in stored)
        if not window:
            return (False,) * n
        pattern = stored if isinstance(stored, int) and not isinstance(stored, bool) else None
        if pattern is None:
            pattern = _SWA_PATTERN.get(self.architecture)
        if pattern is None:
            return (False,) * n
        # llama.cpp set_swa_pattern: layer il is SWA iff il % pattern < pattern - 1.
        return tuple(pattern == 0 or il % pattern < pattern - 1 for il in range(n))

    @property
    def expert_count(self) -> int:
        return self._arch_int("expert_count") or 0

    @property
    def expert_used_count(self) -> int:
        return self._arch_int("expert_used_count") or 0

    @property
    def kv_lora_rank(self) -> int | None:
        """MLA (DeepSeek-style) latent rank: the cache stores a compressed K and no V."""
        return self._arch_int("attention.kv_lora_rank")

    def metadata_int(self, key: str) -> int | None:
        return self._int(key)

    # -- helpers ---------------------------------------------------------------------------
    def _int(self, key: str) -> int | None:
        value = self.metadata.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value

    def _arch_int(self, suffix: str) -> int | None:
        return self._int(f"{self.architecture}.{suffix}")

    def _per_layer(self, suffix: str) -> tuple[int, ...]:
        n = self.block_count
        value = self.metadata.get(f"{self.architecture}.{suffix}")
        if isinstance(value, tuple) and len(value) == n:
            return tuple(int(v) if isinstance(v, int | float) else 0 for v in value)
        if isinstance(value, int) and not isinstance(value, bool):
            return (value,) * n
        return (0,) * n

    def _default_head_dim(self) -> int | None:
        embd = self.embedding_length
        heads = max(self.head_count, default=0)
        return embd // heads if embd and heads else None


# Architectures whose sliding-window layout llama.cpp hard-codes: every Nth layer is global, the
# others use the window (Gemma 3: five local to one global).
_SWA_PATTERN: dict[str, int] = {"gemma2": 2, "gemma3": 6, "cohere2": 4, "gpt-oss": 2, "llama4": 4}


class _Cursor:
    """Sequential reads over a ByteSource in chunks, with a cap on total bytes read."""

    def __init__(self, source: ByteSource, limit: int = MAX_HEADER_BYTES) -> None:
        self._source = source
        self._pos = 0
        self._buf = b""
        self._buf_start = 0
        self._limit = limit
        self._size = source.size

    @property
    def pos(self) -> int:
        return self._pos

    def fail(self, why: str) -> InvalidModelFile:
        return InvalidModelFile(f"{self._source.name} is not a usable GGUF file: {why}")

    def remaining(self) -> int | None:
        return None if self._size is None else self._size - self._pos

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > self._limit:
            raise self.fail(f"header is larger than {format_size(self._limit)}")
        rem = self.remaining()
        if rem is not None and n > rem:
            raise self.fail(f"truncated (needs {n} bytes at offset {self._pos}, {rem} left)")
        start = self._pos - self._buf_start
        if start + n > len(self._buf):
            want = min(max(n, READ_CHUNK), self._limit - self._pos)
            self._buf = self._source.read_at(self._pos, want)
            self._buf_start = self._pos
            start = 0
            if len(self._buf) < n:
                raise self.fail(f"truncated at offset {self._pos + len(self._buf)}")
        self._pos += n
        return self._buf[start : start + n]

    def skip(self, n: int) -> None:
        rem = self.remaining()
        if n < 0 or (rem is not None and n > rem) or self._pos + n > self._limit:
            raise self.fail(f"truncated (a value of {n} bytes runs past the end)")
        self._pos += n

    def scalar(self, fmt: str, size: int) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self.take(size))[0]
        return value

    def u32(self) -> int:
        return int(self.scalar("<I", 4))

    def u64(self) -> int:
        return int(self.scalar("<Q", 8))

    def string(self, cap: int = MAX_STRING_BYTES) -> str:
        length = self.u64()
        if length > cap:
            raise self.fail(f"a string of {length} bytes at offset {self._pos} exceeds the cap")
        return self.take(length).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.u64()
        if length > MAX_STRING_BYTES:
            raise self.fail(f"a string of {length} bytes at offset {self._pos} exceeds the cap")
        self.skip(length)


def _read_value(cur: _Cursor, vtype: int) -> tuple[MetaValue | None, int | None, int | None]:
    """Returns (value or None when not kept, array length or None, array item type or None)."""
    if vtype in _SCALARS:
        fmt, size = _SCALARS[vtype]
        return cur.scalar(fmt, size), None, None
    if vtype == _STRING:
        return cur.string(), None, None
    if vtype != _ARRAY:
        raise cur.fail(f"unknown metadata value type {vtype}")
    item_type, count = _array_head(cur)
    value, length = _read_array(cur, item_type, count, depth=0)
    return value, length, item_type


def _read_array(
    cur: _Cursor, item_type: int, count: int, depth: int
) -> tuple[MetaValue | None, int]:
    if depth >= MAX_NESTED_ARRAYS:
        raise cur.fail("arrays nested too deeply")
    if item_type in _SCALARS:
        fmt, size = _SCALARS[item_type]
        if count > SMALL_ARRAY_KEEP:
            cur.skip(count * size)  # token scores and types: only the length matters
            return None, count
        raw = cur.take(count * size)
        return tuple(struct.unpack(f"<{count}{fmt[1]}", raw)), count
    if item_type == _STRING:
        keep = count <= SMALL_ARRAY_KEEP
        items: list[Scalar] = []
        for _ in range(count):
            if keep:
                items.append(cur.string())
            else:
                cur.skip_string()
        return (tuple(items) if keep else None), count
    if item_type == _ARRAY:
        for _ in range(count):
            inner_type, inner_count = _array_head(cur)
            _read_array(cur, inner_type, inner_count, depth + 1)
        return None, count
    raise cur.fail(f"unknown array item type {item_type}")


def _array_head(cur: _Cursor) -> tuple[int, int]:
    item_type = cur.u32()
    count = cur.u64()
    if count > MAX_ARRAY_ITEMS:
        raise cur.fail(f"an array of {count} items exceeds the cap")
    return item_type, count


def _read_token_list(
    cur: _Cursor, fim_texts: dict[str, int]
) -> tuple[MetaValue | None, int | None, int | None]:
    """The vocabulary: every entry is read (not skipped) so byte tokens can be checked, and the
    FIM tokens' ids are noted in ``fim_texts`` (a few entries at most: the texts are fixed)."""
    item_type, count = _array_head(cur)
    if item_type != _STRING:
        value, length = _read_array(cur, item_type, count, depth=0)
        return value, length, item_type  # the type check reports it
    keep = count <= SMALL_ARRAY_KEEP
    items: list[Scalar] = []
    for index in range(count):
        token = cur.string(cap=MAX_TOKEN_BYTES)
        problem = check_byte_token(token)
        if problem:
            raise cur.fail(f"vocabulary entry {index} {problem}")
        if keep:
            items.append(token)
        if token in ALL_FIM_TEXTS:
            fim_texts.setdefault(token, index)
    return (tuple(items) if keep else None), count, item_type


def _tensor_info(cur: _Cursor) -> tuple[str, GgmlType, tuple[int, ...], int, int]:
    name = cur.string(cap=4096)
    n_dims = cur.u32()
    if not 1 <= n_dims <= MAX_DIMS:
        raise cur.fail(f"tensor {name!r} has {n_dims} dimensions")
    shape = tuple(cur.u64() for _ in range(n_dims))
    n_elements = 1
    for dim in shape:
        if not 1 <= dim < 2**40:
            raise cur.fail(f"tensor {name!r} has an impossible shape {shape}")
        n_elements *= dim
    if n_elements >= 2**46:
        raise cur.fail(f"tensor {name!r} has an impossible shape {shape}")
    type_id = cur.u32()
    gtype = ggml_type(type_id)
    if gtype is None:
        raise cur.fail(f"tensor {name!r} has unknown type {type_id}")
    if shape[0] % gtype.block_size:
        raise cur.fail(f"tensor {name!r} rows do not fill whole {gtype.name} blocks")
    offset = cur.u64()
    return name, gtype, shape, n_elements, offset


@dataclass(frozen=True)
class _PartHeader:
    version: int
    metadata: dict[str, MetaValue]
    array_lengths: dict[str, int]
    has_chat_template: bool
    tensors: list[TensorInfo]
    part: GgufPart
    value_types: dict[str, ValueType]
    chat_template: str | None
    fim_token_texts: dict[str, int]


def _read_part(source: ByteSource, part_index: int) -> _PartHeader:
    cur = _Cursor(source)
    if cur.take(4) != GGUF_MAGIC:
        raise cur.fail("wrong magic (not a GGUF file)")
    version = cur.u32()
    if version not in SUPPORTED_VERSIONS:
        if version in (2 << 24, 3 << 24):
            raise cur.fail("big-endian GGUF files are not supported")
        raise cur.fail(f"unsupported GGUF version {version}")
    n_tensors = cur.u64()
    n_kv = cur.u64()
    if n_tensors > MAX_TENSORS:
        raise cur.fail(f"declares {n_tensors} tensors")
    if n_kv > MAX_KV:
        raise cur.fail(f"declares {n_kv} metadata entries")
    metadata: dict[str, MetaValue] = {}
    lengths: dict[str, int] = {}
    types: dict[str, ValueType] = {}
    has_template = False
    template: str | None = None
    fim_texts: dict[str, int] = {}
    for _ in range(n_kv):
        key = cur.string(cap=MAX_KEY_BYTES)
        if key in types:
            raise cur.fail(f"metadata key {key!r} appears twice")
        vtype = cur.u32()
        if key == TOKEN_LIST_KEY and vtype == _ARRAY:
            value, length, item_type = _read_token_list(cur, fim_texts)
        else:
            value, length, item_type = _read_value(cur, vtype)
        types[key] = ValueType(vtype, item_type)
        if key.startswith("tokenizer.chat_template"):
            has_template = has_template or bool(value)
            if key == "tokenizer.chat_template" and isinstance(value, str):
                template = value  # within MAX_STRING_BYTES, like every string read
            continue  # not in metadata: a listing of metadata need not carry templates
        if value is not None:
            metadata[key] = value
        if length is not None:
            lengths[key] = length
    problem = check_value_types(types)
    if problem:
        raise cur.fail(problem)
    alignment = metadata.get("general.alignment", 32)
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0:
        raise cur.fail(f"invalid alignment {alignment!r}")
    if alignment & (alignment - 1) or alignment > 2**20:
        raise cur.fail(f"invalid alignment {alignment}")
    raw: list[tuple[str, GgmlType, tuple[int, ...], int, int]] = [
        _tensor_info(cur) for _ in range(n_tensors)
    ]
    data_offset = -(-cur.pos // alignment) * alignment
    data_size = None if source.size is None else source.size - data_offset
    tensors: list[TensorInfo] = []
    for name, gtype, shape, n_elements, offset in raw:
        nbytes = gtype.nbytes(n_elements)
        if offset % alignment:
            raise cur.fail(f"tensor {name!r} is not aligned")
        if data_size is not None and offset + nbytes > data_size:
            raise cur.fail(f"truncated: tensor {name!r} ends past the end of the file")
        tensors.append(TensorInfo(name, gtype.name, shape, n_elements, nbytes, offset, part_index))
    part = GgufPart(source.name, source.size, data_offset, n_tensors)
    return _PartHeader(
        version, metadata, lengths, has_template, tensors, part, types, template, fim_texts
    )


def read_header(source: ByteSource) -> GgufHeader:
    """Parse one GGUF (one part of a split model is read as just that part)."""
    return _merge([_read_part(source, 0)])


def read_header_parts(sources: list[ByteSource]) -> GgufHeader:
    """Parse every part of a split model, in order, into one header."""
    parts = [_read_part(src, i) for i, src in enumerate(sources)]
    first = parts[0].metadata
    count = first.get("split.count")
    if isinstance(count, int) and count != len(sources):
        raise InvalidModelFile(
            f"{sources[0].name} says it has {count} parts but {len(sources)} were given"
        )
    return _merge(parts)


def _merge(parts: list[_PartHeader]) -> GgufHeader:
    first = parts[0]
    arch = first.metadata.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise InvalidModelFile(f"{first.part.name} has no general.architecture")
    tensors = tuple(t for p in parts for t in p.tensors)
    declared = first.metadata.get("split.tensors.count")
    if isinstance(declared, int) and len(parts) > 1 and declared != len(tensors):
        raise InvalidModelFile(
            f"{first.part.name}: parts hold {len(tensors)} tensors, header says {declared}"
        )
    header = GgufHeader(
        version=first.version,
        architecture=arch,
        metadata=first.metadata,
        array_lengths=first.array_lengths,
        tensors=tensors,
        parts=tuple(p.part for p in parts),
        has_chat_template=first.has_chat_template,
        value_types=first.value_types,
        chat_template=first.chat_template,
        fim_token_texts=first.fim_token_texts,
    )
    problem = check_model(header)
    if problem:
        raise InvalidModelFile(f"{first.part.name} is not a usable GGUF file: {problem}")
    return header


def read_local_model(path: Path) -> GgufHeader:
    """A local GGUF; for ``…-0000i-of-0000N.gguf`` every sibling part is read as one model."""
    if not path.is_file():
        raise InvalidModelFile(f"{path} is not a file")
    split = split_part(path.name)
    if split is None:
        return _read_files((_FileStamp.of(path),), whole_model=True)
    paths = [
        path.with_name(split_part_name(split.stem, i, split.count))
        for i in range(1, 1 + split.count)
    ]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise InvalidModelFile(f"split model {split.stem} is missing parts: {', '.join(missing)}")
    return _read_files(tuple(_FileStamp.of(p) for p in paths), whole_model=True)


def read_local_file(path: Path) -> GgufHeader:
    """One local file's header (for a split model: just that part), as :func:`read_header`."""
    return _read_files((_FileStamp.of(path),), whole_model=False)


HEADER_CACHE_SIZE = 64  # parsed headers kept: a few hundred KB each, a big library's worth


@dataclass(frozen=True)
class _FileStamp:
    """What identifies a file's bytes without reading them: a rewrite changes size or mtime."""

    path: Path
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> _FileStamp:
        try:
            stat = path.stat()
        except OSError as exc:
            raise InvalidModelFile(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls(path, stat.st_size, stat.st_mtime_ns)


# A module-level cache is sound here because the function is pure: its result depends only on
# the files' bytes, which the stamps identify. The library scan (``ls``, the window), ``fit`` and
# every model load then share one parse of a large header. Errors are not cached: a broken file
# fails fast each time, and a fixed one is read afresh.
@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _read_files(stamps: tuple[_FileStamp, ...], *, whole_model: bool) -> GgufHeader:
    sources: list[ByteSource] = [FileSource(stamp.path) for stamp in stamps]
    return read_header_parts(sources) if whole_model else read_header(sources[0])
