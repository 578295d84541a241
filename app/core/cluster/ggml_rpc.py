"""ggml's RPC backend through ctypes: llama-cpp-python builds it (``-DGGML_RPC=ON``) but binds
none of it, and ships no ``rpc-server`` program, so the worker and the loader call its C API.

ggml's RPC client aborts its process when a worker is lost, so ``register_worker`` (the client)
runs only in the child process that holds a split model, never in Homefire's own; the device
list and the server are safe anywhere.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError, ModelLoadError

# enum ggml_backend_dev_type in ggml-backend.h, in order.
_DEVICE_KINDS = ("cpu", "gpu", "igpu", "accel", "meta")
RPC_LIBRARY_MISSING = (
    "this llama-cpp-python build has no RPC backend (libggml-rpc); reinstall it built with "
    "CMAKE_ARGS=-DGGML_RPC=ON to pool machines"
)


def _lib_dir() -> Path:
    import llama_cpp  # loads libllama, and through it the libggml it was linked against

    return Path(llama_cpp.__file__).parent / "lib"


def _candidates(stem: str) -> list[Path]:
    """``libggml.so``, ``libggml.so.0``, ``libggml.0.dylib``...: not ``libggml-rpc.so``."""
    return sorted(p for p in _lib_dir().glob(f"{stem}.*") if ".so" in p.name or ".dylib" in p.name)


def rpc_available() -> bool:
    """Whether the installed llama-cpp-python was built with ggml's RPC backend."""
    try:
        return bool(_candidates("libggml-rpc"))
    except ImportError:
        return False


def _loaded_library(stem: str) -> ctypes.CDLL:
    """The copy of ``stem`` that libllama itself loaded.

    Wheels ship ``libggml.so``, ``libggml.so.0``... as separate files rather than links, and
    each copy loaded has its own device registry: a worker registered in a copy libllama does
    not use would be invisible to its loads. ``RTLD_NOLOAD`` finds the one already in use.
    """
    for path in _candidates(stem):
        try:
            return ctypes.CDLL(str(path), mode=os.RTLD_NOLOAD | ctypes.RTLD_GLOBAL)
        except OSError:
            continue
    raise ModelLoadError(
        RPC_LIBRARY_MISSING if stem == "libggml-rpc" else f"llama.cpp's {stem} is not loaded"
    )


@dataclass(frozen=True)
class LocalDevice:
    """A device of this machine's ggml build (``CPU``, ``CUDA0``, ``MTL0``)."""

    handle: int
    name: str
    description: str
    kind: str
    free_bytes: int
    total_bytes: int


class _Ggml:
    """The few registry and RPC functions used, with their C prototypes."""

    def __init__(self) -> None:
        ggml = _loaded_library("libggml")
        rpc = _loaded_library("libggml-rpc")
        ptr, size, text = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p
        self.dev_count = _bind(ggml, "ggml_backend_dev_count", size, [])
        self.dev_get = _bind(ggml, "ggml_backend_dev_get", ptr, [size])
        self.dev_by_name = _bind(ggml, "ggml_backend_dev_by_name", ptr, [text])
        self.dev_name = _bind(ggml, "ggml_backend_dev_name", text, [ptr])
        self.dev_description = _bind(ggml, "ggml_backend_dev_description", text, [ptr])
        self.dev_type = _bind(ggml, "ggml_backend_dev_type", ctypes.c_int, [ptr])
        self.dev_memory = _bind(
            ggml, "ggml_backend_dev_memory", None, [ptr, ctypes.POINTER(size), ctypes.POINTER(size)]
        )
        self.register = _bind(ggml, "ggml_backend_register", None, [ptr])
        self.reg_dev_count = _bind(ggml, "ggml_backend_reg_dev_count", size, [ptr])
        self.rpc_add_server = _bind(rpc, "ggml_backend_rpc_add_server", ptr, [text])
        self.rpc_start_server = _bind(
            rpc,
            "ggml_backend_rpc_start_server",
            None,
            [text, text, size, size, ctypes.POINTER(ptr)],
        )

    def device(self, handle: int) -> LocalDevice:
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        self.dev_memory(handle, ctypes.byref(free), ctypes.byref(total))
        kind = self.dev_type(handle)
        return LocalDevice(
            handle=handle,
            name=(self.dev_name(handle) or b"").decode("utf-8", "replace"),
            description=(self.dev_description(handle) or b"").decode("utf-8", "replace"),
            kind=_DEVICE_KINDS[kind] if 0 <= kind < len(_DEVICE_KINDS) else "accel",
            free_bytes=free.value,
            total_bytes=total.value,
        )


def _bind(lib: ctypes.CDLL, name: str, restype: object, argtypes: list[object]) -> Any:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = argtypes
    return function


def _ggml() -> _Ggml:
    # Bound per use (a few lookups): the libraries themselves are the process's, loaded once.
    return _Ggml()


def local_devices() -> list[LocalDevice]:
    ggml = _ggml()
    return [ggml.device(ggml.dev_get(i)) for i in range(ggml.dev_count())]


def devices_to_share(names: Sequence[str] = ()) -> list[LocalDevice]:
    """The devices a worker shares: those named, else this machine's accelerators (GPUs), else
    its CPU, as llama.cpp's rpc-server chooses."""
    ggml = _ggml()
    available = local_devices()
    if names:
        chosen = []
        for name in names:
            handle = ggml.dev_by_name(name.encode())
            if not handle:
                known = ", ".join(device.name for device in available) or "none"
                raise ConfigError(f"no device named {name!r} here; this machine has: {known}")
            chosen.append(ggml.device(handle))
        return chosen
    accelerators = [device for device in available if device.kind in ("gpu", "igpu")]
    if accelerators:
        return accelerators
    cpus = [device for device in available if device.kind == "cpu"]
    if not cpus:
        raise ModelLoadError("this llama.cpp build found no device to share")
    return cpus[:1]


def serve_forever(
    endpoint: str, cache_dir: Path | None, n_threads: int, devices: Sequence[LocalDevice]
) -> None:
    """ggml's RPC server on ``endpoint``; returns only if it could not start (it prints why)."""
    ggml = _ggml()
    array = (ctypes.c_void_p * len(devices))(*(device.handle for device in devices))
    ggml.rpc_start_server(
        endpoint.encode(),
        str(cache_dir).encode() if cache_dir is not None else None,
        n_threads,
        len(devices),
        array,
    )


def register_worker(endpoint: str) -> int:
    """Make a worker's devices llama.cpp devices of this process (they come first in a model's
    device list); returns how many it has. The worker must have been probed: ggml aborts the
    process on one that does not answer its handshake."""
    ggml = _ggml()
    registry = ggml.rpc_add_server(endpoint.encode())
    if not registry:
        raise ModelLoadError(f"worker {endpoint} offers no device")
    ggml.register(registry)
    return int(ggml.reg_dev_count(registry))
