"""The hardware description every other service plans with (detected, built-in or user-defined).

Owned by the hardware package; fields may be added, but existing ones keep their names and units
because the fit estimator, the recommender, the GUI and ``homefire hw --json`` read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

GpuVendor = Literal["nvidia", "apple", "amd", "intel", "other"]
Backend = Literal["cpu", "cuda", "metal", "vulkan", "rocm", "sycl"]
ProfileSource = Literal["detected", "builtin", "user"]


@dataclass(frozen=True)
class AbsentPart:
    """A part of the machine a probe could not read, and why (never a crash)."""

    part: str
    reason: str


@dataclass(frozen=True)
class CpuInfo:
    brand: str
    physical_cores: int | None
    logical_cores: int | None
    simd: tuple[str, ...] = ()  # e.g. ("avx2", "avx512f", "neon")
    arch: str | None = None  # "x86_64", "arm64"
    performance_cores: int | None = None  # Apple Silicon (and hybrid x86 when known)
    efficiency_cores: int | None = None


@dataclass(frozen=True)
class GpuDevice:
    vendor: GpuVendor
    name: str
    memory_total_bytes: int
    memory_free_bytes: int | None = None
    memory_used_bytes: int | None = None
    unified_memory: bool = False  # Apple Silicon and APUs share RAM with the CPU
    # The share of memory llama.cpp may really use (Apple's GPU working-set limit); None = total.
    usable_memory_bytes: int | None = None
    memory_bandwidth_gbs: float | None = None  # GB/s (10^9 bytes), for speed estimates
    backend: Backend | None = None  # the backend that would drive it
    usable_by_build: bool = False  # the installed llama-cpp-python can offload to it
    unusable_reason: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    compute_capability: str | None = None
    power_draw_w: float | None = None
    energy_mj: int | None = None  # NVML total energy counter, millijoules since driver load
    index: int = 0
    # Where the figures above come from, so every number shown says measured or estimated:
    # e.g. "spec: NVIDIA RTX 4090 datasheet" or "estimated: macOS default share of RAM".
    memory_bandwidth_source: str | None = None
    usable_memory_source: str | None = None


@dataclass(frozen=True)
class HardwareProfile:
    name: str  # "this machine", or the profile's name
    source: ProfileSource
    os: str  # "linux", "darwin", "windows"
    cpu: CpuInfo
    ram_total_bytes: int
    ram_available_bytes: int | None = None
    ram_bandwidth_gbs: float | None = None  # system memory bandwidth, for CPU decode estimates
    ram_bandwidth_source: str | None = None  # "spec: ..." or "assumed: ..."
    gpus: tuple[GpuDevice, ...] = ()
    backends: tuple[Backend, ...] = ("cpu",)  # what the installed llama.cpp build can use
    llama_cpp_version: str | None = None  # the llama-cpp-python the backends were read from
    disk_free_bytes: int | None = None  # where models are stored
    absent: tuple[AbsentPart, ...] = field(default=())
    sources: tuple[str, ...] = ()  # citations for a planning profile's spec figures
