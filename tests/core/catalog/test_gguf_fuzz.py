"""Fuzzing the GGUF header reader: any bytes give a header or an InvalidModelFile, quickly.

Mutations start from a valid tiny model (so they reach deep into the header, not just the
magic): bytes flipped, counts and lengths overwritten with boundary integers, the file cut.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.catalog.gguf_header import BytesSource, GgufHeader, read_header
from app.core.errors import InvalidModelFile
from tests.fixtures.gguf_writer import write_tiny_model

pytestmark = pytest.mark.fuzz

_BOUNDARY_INTS = [0, 1, 2, 3, 4, 8, 9, 255, 256, 513, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
                  2**63 - 1, 2**63, 2**64 - 1]  # fmt: skip


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    [path] = write_tiny_model(
        tmp_path_factory.mktemp("fuzz") / "tiny.gguf", n_layers=2, n_embd=32, n_ff=32, vocab=16
    )
    return Path(path).read_bytes()


def _header_end(data: bytes) -> int:
    header = read_header(BytesSource(data))
    return header.data_offset


def _read(data: bytes) -> GgufHeader | None:
    started = time.monotonic()
    try:
        return read_header(BytesSource(data, "fuzzed.gguf"))
    except InvalidModelFile:
        return None
    finally:
        assert time.monotonic() - started < 10  # a hang guard, not a speed assert


_edit = st.tuples(
    st.sampled_from(["byte", "u32", "u64"]),
    st.integers(min_value=0, max_value=2**31),  # position, folded into the header's length
    st.one_of(st.sampled_from(_BOUNDARY_INTS), st.integers(min_value=0, max_value=2**64 - 1)),
)


@given(edits=st.lists(_edit, min_size=1, max_size=6), cut=st.none() | st.integers(0, 2**31))
def test_mutated_headers_give_a_header_or_invalid_model_file(
    valid: bytes, edits: list[tuple[str, int, int]], cut: int | None
) -> None:
    data = bytearray(valid)
    end = _header_end(valid)
    for kind, position, value in edits:
        at = position % end
        if kind == "byte":
            data[at] = value & 0xFF
        elif kind == "u32":
            data[at : at + 4] = struct.pack("<I", value & 0xFFFFFFFF)
        else:
            data[at : at + 8] = struct.pack("<Q", value)
    if cut is not None:
        del data[cut % len(data) :]
    header = _read(bytes(data))
    if header is not None:  # whatever is accepted must be self-consistent
        assert header.data_offset + header.tensor_bytes <= len(data)
        assert all(t.offset >= 0 for t in header.tensors)


@given(body=st.binary(max_size=4096), version=st.sampled_from([2, 3]))
def test_random_bytes_after_a_valid_preamble(body: bytes, version: int) -> None:
    _read(b"GGUF" + struct.pack("<I", version) + body)
