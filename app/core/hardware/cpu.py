"""The CPU: brand, cores, threads, the SIMD extensions llama.cpp's CPU kernels use, architecture."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from app.core.errors import HardwareProbeError
from app.core.hardware.command import CommandRunner, TextReader
from app.core.hardware.probe import ProbeResult
from app.core.hardware.profile import CpuInfo
from app.core.hardware.sysctl import sysctl_int

# psutil.cpu_count's shape: (logical) -> count or None.
CpuCounter = Callable[[bool], int | None]

# Kernel flag name -> the name Homefire shows, in the order llama.cpp's kernels care about them.
_X86_SIMD = {
    "pni": "sse3",
    "ssse3": "ssse3",
    "sse4_1": "sse4_1",
    "sse4_2": "sse4_2",
    "avx": "avx",
    "f16c": "f16c",
    "fma": "fma",
    "avx2": "avx2",
    "avx_vnni": "avx_vnni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512_vnni": "avx512_vnni",
    "avx512_bf16": "avx512_bf16",
    "avx512vbmi": "avx512vbmi",
    "amx_tile": "amx_tile",
    "amx_int8": "amx_int8",
    "amx_bf16": "amx_bf16",
}
_ARM_SIMD = {
    "asimd": "neon",
    "neon": "neon",
    "asimdhp": "fp16",
    "asimddp": "dotprod",
    "i8mm": "i8mm",
    "bf16": "bf16",
    "sve": "sve",
    "sve2": "sve2",
    "sme": "sme",
}
# macOS reports ARM features as sysctl keys.
_DARWIN_ARM_SIMD = {
    "hw.optional.AdvSIMD": "neon",
    "hw.optional.neon": "neon",
    "hw.optional.arm.FEAT_FP16": "fp16",
    "hw.optional.arm.FEAT_DotProd": "dotprod",
    "hw.optional.arm.FEAT_I8MM": "i8mm",
    "hw.optional.arm.FEAT_BF16": "bf16",
    "hw.optional.arm.FEAT_SME": "sme",
}
_DARWIN_X86_ALIASES = {"avx1.0": "avx", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "sse3": "pni"}


def normalise_arch(machine: str) -> str:
    lowered = machine.lower()
    if lowered in ("amd64", "x86_64", "x64"):
        return "x86_64"
    if lowered in ("aarch64", "arm64", "armv8l"):
        return "arm64"
    return lowered


def simd_flags(flags: Iterable[str]) -> tuple[str, ...]:
    present = {flag.lower() for flag in flags}
    found: list[str] = []
    for table in (_X86_SIMD, _ARM_SIMD):
        for flag, name in table.items():
            if flag in present and name not in found:
                found.append(name)
    return tuple(found)


def _colon_fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def parse_proc_cpuinfo(text: str, machine: str = "") -> CpuInfo:
    """The first processor block of ``/proc/cpuinfo``; x86 (``flags``) and ARM (``Features``)."""
    blocks = [block for block in re.split(r"\n\s*\n", text) if block.strip()]
    first = _colon_fields(blocks[0]) if blocks else {}
    processors = sum(1 for block in blocks if "processor" in _colon_fields(block))
    packages = {
        _colon_fields(block).get("physical id") for block in blocks if "physical id" in block
    }
    package_count = max(len(packages), 1)
    cores = _int(first.get("cpu cores"))
    siblings = _int(first.get("siblings"))
    # A dump of one processor block still says how many cores and threads its package has.
    logical = siblings * package_count if siblings else processors or None
    flags = (first.get("flags") or first.get("features") or "").split()
    return CpuInfo(
        brand=first.get("model name") or first.get("hardware") or "unknown CPU",
        physical_cores=cores * package_count if cores else None,
        logical_cores=logical,
        simd=simd_flags(flags),
        arch=normalise_arch(machine) if machine else None,
    )


def parse_lscpu(text: str) -> CpuInfo:
    fields = _colon_fields(text)
    sockets = _int(fields.get("socket(s)")) or 1
    per_socket = _int(fields.get("core(s) per socket"))
    arch = fields.get("architecture")
    return CpuInfo(
        brand=fields.get("model name") or "unknown CPU",
        physical_cores=per_socket * sockets if per_socket else None,
        logical_cores=_int(fields.get("cpu(s)")),
        simd=simd_flags(fields.get("flags", "").split()),
        arch=normalise_arch(arch) if arch else None,
    )


def cpu_from_sysctl(values: dict[str, str]) -> CpuInfo:
    """macOS: brand, cores and the performance/efficiency split from ``sysctl -a``."""
    simd: list[str] = []
    for key, name in _DARWIN_ARM_SIMD.items():
        if values.get(key) == "1" and name not in simd:
            simd.append(name)
    # Intel Macs list x86 features in two sysctl strings, upper case ("AVX1.0", "AVX2").
    x86_words = " ".join(
        values.get(key, "") for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features")
    )
    x86_flags = [_DARWIN_X86_ALIASES.get(word.lower(), word.lower()) for word in x86_words.split()]
    simd.extend(name for name in simd_flags(x86_flags) if name not in simd)
    two_levels = sysctl_int(values, "hw.nperflevels") == 2
    arm = values.get("hw.optional.arm64") == "1"
    return CpuInfo(
        brand=values.get("machdep.cpu.brand_string") or "unknown CPU",
        physical_cores=sysctl_int(values, "hw.physicalcpu"),
        logical_cores=sysctl_int(values, "hw.logicalcpu"),
        simd=tuple(simd),
        arch="arm64" if arm else ("x86_64" if x86_flags else None),
        performance_cores=sysctl_int(values, "hw.perflevel0.physicalcpu") if two_levels else None,
        efficiency_cores=sysctl_int(values, "hw.perflevel1.physicalcpu") if two_levels else None,
    )


def probe_linux_cpu(
    machine: str,
    read_text: TextReader,
    runner: CommandRunner,
    proc_root: Path = Path("/proc"),
) -> ProbeResult[CpuInfo]:
    cpuinfo = proc_root / "cpuinfo"
    try:
        info: CpuInfo | None = parse_proc_cpuinfo(read_text(cpuinfo), machine)
        reason = f"{cpuinfo} names no CPU model"
    except OSError as exc:
        info, reason = None, f"cannot read {cpuinfo}: {exc.strerror or exc}"
    if info is not None and info.brand != "unknown CPU":
        return ProbeResult(info)
    # ARM boards often leave the model out of /proc/cpuinfo; lscpu knows it from the part number.
    try:
        listed = parse_lscpu(runner(["lscpu"]))
    except HardwareProbeError as exc:
        if info is not None:
            return ProbeResult(info)
        return ProbeResult.missing("cpu", f"{reason}; {exc.user_message}")
    if info is None:
        return ProbeResult(listed)
    return ProbeResult(
        CpuInfo(
            brand=listed.brand,
            physical_cores=info.physical_cores or listed.physical_cores,
            logical_cores=info.logical_cores or listed.logical_cores,
            simd=info.simd or listed.simd,
            arch=info.arch or listed.arch,
        )
    )


def psutil_cpu_count(logical: bool) -> int | None:
    import psutil

    count = psutil.cpu_count(logical=logical)
    return int(count) if count else None


def with_live_counts(info: CpuInfo, cpu_count: CpuCounter) -> CpuInfo:
    """Fill core counts a text dump left out from the OS's own count (psutil)."""
    if info.physical_cores is not None and info.logical_cores is not None:
        return info
    physical = info.physical_cores or cpu_count(False)
    logical = info.logical_cores or cpu_count(True)
    return CpuInfo(
        brand=info.brand,
        physical_cores=physical,
        logical_cores=logical,
        simd=info.simd,
        arch=info.arch,
        performance_cores=info.performance_cores,
        efficiency_cores=info.efficiency_cores,
    )
