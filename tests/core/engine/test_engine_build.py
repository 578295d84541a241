"""The installed llama-cpp-python must bundle a llama.cpp with the loader fixes Homefire relies on.

llama-cpp-python pins one llama.cpp commit per release, and downstream apps that lag behind
ship loader bugs fixed upstream long ago. The bundled libggml reports the commit it was built
from (``ggml_commit()``); the build number comes from this table, filled from llama-cpp-python's
changelog ("update llama.cpp to ggml-org/llama.cpp@<commit>") and llama.cpp's release tags.
An engine upgrade adds its row here once checked.
"""

from __future__ import annotations

import ctypes

import llama_cpp
import llama_cpp._ggml

# llama.cpp commit (7 hex digits) -> its release build number (tag bNNNNN)
KNOWN_BUILDS = {
    "0c1e570": 11312,  # llama-cpp-python 0.3.36, 2026-10-01
}

# The fixes named for malformed GGUFs: b7824 (GHSA-96jg-mvhq-q7q7, ggml_nbytes overflow), b8146
# (GHSA-3p4r-fq3f-q74v, huge allocations), PR #22267, and the 2026 loader wave (#26051
# block_count > LLAMA_MAX_LAYERS, #26511 "<0x-1>" byte token, #27075 array types, merged by
# mid-August 2026). b11312 is the first build we checked that contains them all, and the one
# llama-cpp-python 0.3.36 (pyproject's floor) bundles.
MIN_BUILD = 11312


def bundled_llama_cpp_commit() -> str:
    commit_fn = llama_cpp._ggml.libggml.ggml_commit
    commit_fn.restype = ctypes.c_char_p
    raw: bytes = commit_fn()
    return raw.decode().split("-")[0]  # "0c1e570-dirty": local build changes do not count


def test_bundled_llama_cpp_is_at_least_the_minimum_patched_build() -> None:
    commit = bundled_llama_cpp_commit()
    assert commit in KNOWN_BUILDS, (
        f"llama-cpp-python {llama_cpp.__version__} bundles llama.cpp {commit}, which this test "
        "does not know: look up its build number and add it to KNOWN_BUILDS"
    )
    assert KNOWN_BUILDS[commit] >= MIN_BUILD, (
        f"llama-cpp-python {llama_cpp.__version__} bundles llama.cpp b{KNOWN_BUILDS[commit]}; "
        f"GGUF loader fixes need b{MIN_BUILD} or later"
    )
