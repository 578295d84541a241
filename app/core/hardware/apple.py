"""Apple Silicon: the chip, its unified memory and the share of it the GPU may use.

Metal reports the GPU's budget as ``recommendedMaxWorkingSetSize``; llama.cpp sizes its offload by
it. It follows ``iogpu.wired_limit_mb`` when the user raised that, and otherwise is a macOS default
share of RAM that differs by RAM size and macOS version, so it is read where possible (llama.cpp's
Metal device reports it as its total memory) and only estimated when not, and says which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.errors import HardwareProbeError
from app.core.hardware.command import CommandRunner
from app.core.hardware.probe import ProbeResult
from app.core.hardware.profile import CpuInfo, GpuDevice
from app.core.hardware.specs import apple_bandwidth, apple_chip_key
from app.core.hardware.sysctl import sysctl_int

GIB = 1024**3
MIB = 1024**2

# Recorded values that no simple share of RAM reproduces (llama.cpp logs in the fixtures).
_RECORDED_WORKING_SET = {
    512 * GIB: (
        464 * GIB,
        "recorded: Metal's limit on a 512 GB Mac Studio M3 Ultra (498216.21 MB in llama.cpp's log)",
    ),
}
# macOS's default below this much RAM is two thirds, above it three quarters (matches the 16, 32,
# 64 and 96 GB values recorded from llama.cpp; recent macOS versions may allow more).
_TWO_THIRDS_UP_TO = 36 * GIB


@dataclass(frozen=True)
class AppleHardware:
    chip: str  # "Apple M3 Ultra"
    memory_bytes: int
    total_cores: int | None = None
    performance_cores: int | None = None
    efficiency_cores: int | None = None


def default_working_set(ram_bytes: int) -> tuple[int, str]:
    """macOS's default GPU share of unified memory, for machines Metal cannot be asked about."""
    if ram_bytes in _RECORDED_WORKING_SET:
        return _RECORDED_WORKING_SET[ram_bytes]
    if ram_bytes <= _TWO_THIRDS_UP_TO:
        return ram_bytes * 2 // 3, "estimated: macOS default of 2/3 of RAM (RAM ≤ 36 GB)"
    return ram_bytes * 3 // 4, "estimated: macOS default of 3/4 of RAM (RAM > 36 GB)"


def working_set_limit(
    ram_bytes: int, wired_limit_mb: int | None, metal_bytes: int | None
) -> tuple[int, str]:
    if metal_bytes:
        return metal_bytes, "measured: Metal recommendedMaxWorkingSetSize, read through llama.cpp"
    if wired_limit_mb:  # 0 means "use the macOS default"
        return wired_limit_mb * MIB, "set: iogpu.wired_limit_mb"
    return default_working_set(ram_bytes)


def apple_from_sysctl(values: dict[str, str]) -> AppleHardware | None:
    chip = values.get("machdep.cpu.brand_string", "")
    memory = sysctl_int(values, "hw.memsize")
    if apple_chip_key(chip) is None or memory is None:
        return None
    return AppleHardware(
        chip=chip,
        memory_bytes=memory,
        total_cores=sysctl_int(values, "hw.physicalcpu"),
        performance_cores=sysctl_int(values, "hw.perflevel0.physicalcpu"),
        efficiency_cores=sysctl_int(values, "hw.perflevel1.physicalcpu"),
    )


_CORES = re.compile(r"(\d+)\s*\((\d+)\s+performance\s+and\s+(\d+)\s+efficiency\)", re.IGNORECASE)
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(TB|GB|MB)", re.IGNORECASE)
_MEMORY_UNITS = {"tb": 1024**4, "gb": GIB, "mb": MIB}  # Apple's "GB" of RAM is GiB


def parse_system_profiler_hardware(text: str) -> AppleHardware | None:
    """``system_profiler SPHardwareDataType`` (full, ``-detailLevel mini`` or grep-filtered)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[" ".join(key.split()).lower()] = value.strip()
    chip = fields.get("chip", "")
    memory = _MEMORY.fullmatch(fields.get("memory", ""))
    if apple_chip_key(chip) is None or memory is None:
        return None
    cores = _CORES.search(fields.get("total number of cores", ""))
    return AppleHardware(
        chip=chip,
        memory_bytes=int(float(memory.group(1)) * _MEMORY_UNITS[memory.group(2).lower()]),
        total_cores=int(cores.group(1)) if cores else None,
        performance_cores=int(cores.group(2)) if cores else None,
        efficiency_cores=int(cores.group(3)) if cores else None,
    )


def apple_gpu(
    hardware: AppleHardware, wired_limit_mb: int | None = None, metal_bytes: int | None = None
) -> GpuDevice:
    usable, usable_source = working_set_limit(hardware.memory_bytes, wired_limit_mb, metal_bytes)
    bandwidth = apple_bandwidth(hardware.chip, cpu_cores=hardware.total_cores)
    return GpuDevice(
        vendor="apple",
        name=hardware.chip,
        memory_total_bytes=hardware.memory_bytes,
        unified_memory=True,
        usable_memory_bytes=usable,
        usable_memory_source=usable_source,
        memory_bandwidth_gbs=bandwidth.gbs if bandwidth else None,
        memory_bandwidth_source=bandwidth.source if bandwidth else None,
        backend="metal",
    )


def apple_cpu(hardware: AppleHardware) -> CpuInfo:
    """The CPU as system_profiler describes it, for when sysctl could not be read."""
    return CpuInfo(
        brand=hardware.chip,
        physical_cores=hardware.total_cores,
        logical_cores=hardware.total_cores,  # Apple Silicon has no SMT
        simd=("neon",),
        arch="arm64",
        performance_cores=hardware.performance_cores,
        efficiency_cores=hardware.efficiency_cores,
    )


def probe_apple(sysctl: dict[str, str] | None, runner: CommandRunner) -> ProbeResult[AppleHardware]:
    """The chip from sysctl, else from system_profiler (slower, so only when sysctl fell short)."""
    hardware = apple_from_sysctl(sysctl) if sysctl else None
    if hardware is not None:
        return ProbeResult(hardware)
    try:
        text = runner(["system_profiler", "SPHardwareDataType"])
    except HardwareProbeError as exc:
        return ProbeResult.missing("apple gpu", f"no Apple Silicon chip found: {exc.user_message}")
    hardware = parse_system_profiler_hardware(text)
    if hardware is None:
        return ProbeResult.missing("apple gpu", "system_profiler names no Apple Silicon chip")
    return ProbeResult(hardware)


def read_apple_gpu(
    hardware: AppleHardware, sysctl: dict[str, str] | None, metal_bytes: int | None
) -> GpuDevice:
    wired = sysctl_int(sysctl, "iogpu.wired_limit_mb") if sysctl else None
    return apple_gpu(hardware, wired, metal_bytes)
