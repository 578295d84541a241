"""Which of llama-cpp-python's shared libraries the frozen app ships.

A wheel cannot hold symlinks, so ``llama_cpp/lib`` carries three full copies of each library:
``libllama.so`` (what ctypes opens), ``libllama.so.0`` (the SONAME other libraries link against)
and ``libllama.so.0.5.0`` (the real file name, which nothing opens). Shipping the last one would
add about 8 MB for nothing. macOS names them ``libllama.dylib``, ``libllama.0.dylib``,
``libllama.0.5.0.dylib`` with the same roles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# libX.so.MAJOR.MINOR[.PATCH] and libX.MAJOR.MINOR[.PATCH].dylib: full version, opened by nobody.
_FULL_VERSION = re.compile(r"(\.so(\.\d+){2,}|(\.\d+){2,}\.dylib)$")
_LIBRARY = re.compile(r"\.(so(\.\d+)*|dylib|dll)$")


def shipped_library_names(names: Iterable[str]) -> list[str]:
    """The library file names worth shipping, sorted; non-library files are left out."""
    return sorted(n for n in names if _LIBRARY.search(n) and not _FULL_VERSION.search(n))
