"""What the installed llama-cpp-python build can drive: CPU, CUDA, Metal, Vulkan, ROCm, SYCL.

A wheel built without CUDA cannot use an RTX 4090 however much memory it has, so the fit and the
GUI must know. The binding exposes ``llama_supports_gpu_offload()``; the ggml backend registry
(which backends were compiled in, and the devices they found with their memory) is in libggml, which
llama-cpp-python loads but does not bind, so it is read through ctypes. ``llama_cpp`` is imported
lazily, here only: importing it loads the native libraries.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from app.core.hardware.probe import ProbeResult
from app.core.hardware.profile import Backend

DeviceKind = Literal["cpu", "gpu", "igpu", "accel"]
# enum ggml_backend_dev_type in ggml-backend.h, in order.
_DEVICE_KINDS: tuple[DeviceKind, ...] = ("cpu", "gpu", "igpu", "accel")

# ggml registry names -> Homefire's backend names; BLAS, RPC and the like drive no GPU of their own.
_REGISTRY_NAMES: dict[str, Backend] = {
    "cpu": "cpu",
    "cuda": "cuda",
    "mtl": "metal",
    "metal": "metal",
    "vulkan": "vulkan",
    "rocm": "rocm",
    "hip": "rocm",
    "sycl": "sycl",
}
_BACKEND_ORDER: tuple[Backend, ...] = ("cpu", "cuda", "rocm", "metal", "vulkan", "sycl")


@dataclass(frozen=True)
class BuildDevice:
    """A device a ggml backend of this build found (``CUDA0``, ``MTL0``, ``Vulkan0``, ``CPU``)."""

    name: str
    description: str
    kind: DeviceKind
    memory_total_bytes: int | None
    memory_free_bytes: int | None


@dataclass(frozen=True)
class BuildFacts:
    """What the binding says, before interpretation; tests build these from recorded logs."""

    version: str
    gpu_offload: bool
    registry: tuple[str, ...] | None  # None when the ggml registry could not be read
    devices: tuple[BuildDevice, ...]
    system_info: str


@dataclass(frozen=True)
class BuildInfo:
    version: str
    gpu_offload: bool
    backends: tuple[Backend, ...]
    devices: tuple[BuildDevice, ...]


BuildLoader = Callable[[], BuildFacts]


def registry_names_from_system_info(system_info: str) -> tuple[str, ...]:
    """``"MTL : EMBED_LIBRARY = 1 | CPU : NEON = 1 | ..."`` -> ``("MTL", "CPU")``.

    llama.cpp prints one ``NAME :`` group per registered backend that lists features; backends
    without a feature list (Vulkan in some versions) do not appear, hence only a fallback.
    """
    return tuple(re.findall(r"(?:^|\|)\s*([A-Za-z][A-Za-z0-9_]*) :", system_info))


def backends_from_names(names: tuple[str, ...]) -> tuple[Backend, ...]:
    found = {_REGISTRY_NAMES[name.lower()] for name in names if name.lower() in _REGISTRY_NAMES}
    found.add("cpu")  # every build has the CPU backend
    return tuple(backend for backend in _BACKEND_ORDER if backend in found)


def interpret_build(facts: BuildFacts) -> BuildInfo:
    names = facts.registry
    if names is None:
        names = registry_names_from_system_info(facts.system_info)
    backends = backends_from_names(names)
    return BuildInfo(
        version=facts.version,
        # llama.cpp reports offload as supported whenever any non-CPU device type is built in,
        # the RPC backend included; a GPU of this machine needs a GPU backend.
        gpu_offload=facts.gpu_offload and backends != ("cpu",),
        backends=backends,
        devices=facts.devices,
    )


def _bind(lib: Any, name: str, restype: Any, argtypes: list[Any]) -> Any:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = argtypes
    return function


def _read_registry(libggml: Any) -> tuple[tuple[str, ...], tuple[BuildDevice, ...]]:
    ptr, size = ctypes.c_void_p, ctypes.c_size_t
    reg_count = _bind(libggml, "ggml_backend_reg_count", size, [])
    reg_get = _bind(libggml, "ggml_backend_reg_get", ptr, [size])
    reg_name = _bind(libggml, "ggml_backend_reg_name", ctypes.c_char_p, [ptr])
    dev_count = _bind(libggml, "ggml_backend_dev_count", size, [])
    dev_get = _bind(libggml, "ggml_backend_dev_get", ptr, [size])
    dev_name = _bind(libggml, "ggml_backend_dev_name", ctypes.c_char_p, [ptr])
    dev_description = _bind(libggml, "ggml_backend_dev_description", ctypes.c_char_p, [ptr])
    dev_type = _bind(libggml, "ggml_backend_dev_type", ctypes.c_int, [ptr])
    dev_memory = _bind(
        libggml,
        "ggml_backend_dev_memory",
        None,
        [ptr, ctypes.POINTER(size), ctypes.POINTER(size)],
    )
    names = tuple(
        (reg_name(reg_get(index)) or b"").decode("utf-8", "replace") for index in range(reg_count())
    )
    devices = []
    for index in range(dev_count()):
        device = dev_get(index)
        free, total = size(0), size(0)
        dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        kind = dev_type(device)
        devices.append(
            BuildDevice(
                name=(dev_name(device) or b"").decode("utf-8", "replace"),
                description=(dev_description(device) or b"").decode("utf-8", "replace"),
                kind=_DEVICE_KINDS[kind] if 0 <= kind < len(_DEVICE_KINDS) else "accel",
                memory_total_bytes=total.value or None,
                memory_free_bytes=free.value or None,
            )
        )
    return names, tuple(devices)


def load_build_facts() -> BuildFacts:
    """Ask the installed llama-cpp-python; raises ImportError/OSError when it cannot load."""
    import llama_cpp

    system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    registry: tuple[str, ...] | None
    devices: tuple[BuildDevice, ...] = ()
    try:
        from llama_cpp import _ggml

        registry, devices = _read_registry(_ggml.libggml)
    except (ImportError, OSError, AttributeError):
        registry = None  # an older or differently packaged binding: fall back to system_info
    return BuildFacts(
        version=str(getattr(llama_cpp, "__version__", "unknown")),
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        registry=registry,
        devices=devices,
        system_info=system_info,
    )


def probe_build(loader: BuildLoader = load_build_facts) -> ProbeResult[BuildInfo]:
    try:
        facts = loader()
    except ImportError as exc:
        return ProbeResult.missing("llama.cpp build", f"llama-cpp-python is not installed: {exc}")
    except OSError as exc:
        reason = f"llama-cpp-python's native library did not load: {exc}"
        return ProbeResult.missing("llama.cpp build", reason)
    return ProbeResult(interpret_build(facts))


_REINSTALL_FLAGS: dict[Backend, str] = {
    "cuda": "-DGGML_CUDA=on",
    "rocm": "-DGGML_HIP=on",
    "metal": "-DGGML_METAL=on",
    "vulkan": "-DGGML_VULKAN=on",
    "sycl": "-DGGML_SYCL=on",
}
_BACKEND_LABELS: dict[Backend, str] = {
    "cpu": "CPU",
    "cuda": "CUDA",
    "rocm": "ROCm",
    "metal": "Metal",
    "vulkan": "Vulkan",
    "sycl": "SYCL",
}


def backend_label(backend: Backend) -> str:
    return _BACKEND_LABELS[backend]


def missing_backend_reason(backend: Backend) -> str:
    flag = _REINSTALL_FLAGS.get(backend, "")
    return (
        f"this llama-cpp-python build has no {backend_label(backend)} support; reinstall with "
        f'CMAKE_ARGS="{flag}" pip install --force-reinstall --no-cache-dir llama-cpp-python'
    )
