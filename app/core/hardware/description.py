"""A hardware profile in words: the one description ``homefire hw`` prints and the Hardware page shows.

Each figure says where it comes from (measured, spec sheet, assumed), so a planning profile's
numbers are never mistaken for a measurement of this machine. The renderers only lay the facts
out: as aligned text lines or as rich text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from app.core.hardware.build import backend_label
from app.core.hardware.profile import GpuDevice, HardwareProfile
from app.core.sizes import format_size


@dataclass(frozen=True)
class Fact:
    """One line: a labelled fact ("CPU", "GPU 0"), or a detail of the labelled line above it."""

    label: str | None
    text: str


def heading(profile: HardwareProfile) -> str:
    if profile.source == "detected":
        return "This machine (detected now; sizes are measured, bandwidths are spec figures)"
    kind = "built-in" if profile.source == "builtin" else "your"
    return f"{profile.name} ({kind} planning profile: spec figures, not measurements)"


def describe(profile: HardwareProfile, models_dir: Path | None = None) -> list[Fact]:
    """Every part of the machine, then what could not be read, then the spec sheets cited."""
    facts = [
        Fact("OS", profile.os),
        Fact("CPU", _cpu(profile)),
        Fact("RAM", _ram(profile)),
    ]
    for gpu in profile.gpus:
        facts.extend(_gpu(gpu))
    if not profile.gpus:
        facts.append(Fact("GPUs", "none found"))
    backends = ", ".join(backend_label(backend) for backend in profile.backends)
    build = f" (llama-cpp-python {profile.llama_cpp_version})" if profile.llama_cpp_version else ""
    facts.append(Fact("Backends", backends + build))
    if profile.disk_free_bytes is not None:
        where = f" at {models_dir}" if models_dir else ""
        facts.append(Fact("Disk", f"{format_size(profile.disk_free_bytes)} free{where}"))
    if profile.absent:
        facts.append(Fact("Not read", ""))
        facts.extend(Fact(None, f"{part.part}: {part.reason}") for part in profile.absent)
    if profile.sources:
        facts.append(Fact("Sources", ""))
        facts.extend(Fact(None, source) for source in profile.sources)
    return facts


def summary(profile: HardwareProfile) -> str:
    """One line per profile, for lists of them."""
    gpus = ", ".join(
        f"{gpu.name} {format_size(gpu.usable_memory_bytes or gpu.memory_total_bytes)}"
        for gpu in profile.gpus
    )
    return f"{profile.name}  [{profile.source}]  RAM {format_size(profile.ram_total_bytes)}; {gpus or 'no GPU'}"


def as_text(profile: HardwareProfile, models_dir: Path | None = None) -> str:
    lines = [heading(profile)]
    for fact in describe(profile, models_dir):
        if fact.label is None:
            lines.append(f"  {fact.text}")
        else:
            lines.append(f"{fact.label + ':':<10}{fact.text}".rstrip())
    return "\n".join(lines)


def as_rich_text(profile: HardwareProfile, models_dir: Path | None = None) -> str:
    lines = [f"<i>{html.escape(heading(profile))}</i>", ""]
    for fact in describe(profile, models_dir):
        text = html.escape(fact.text)
        if fact.label is None:
            lines.append(f"&nbsp;&nbsp;<small>{text}</small>")
        else:
            lines.append(f"<b>{html.escape(fact.label)}</b>: {text}")
    return "<br>".join(lines)


def _cpu(profile: HardwareProfile) -> str:
    cpu = profile.cpu
    parts = [cpu.brand]
    if cpu.physical_cores:
        split = ""
        if cpu.performance_cores and cpu.efficiency_cores:
            split = f" ({cpu.performance_cores} performance + {cpu.efficiency_cores} efficiency)"
        parts.append(f"{cpu.physical_cores} cores{split}")
    if cpu.logical_cores:
        parts.append(f"{cpu.logical_cores} threads")
    if cpu.arch:
        parts.append(cpu.arch)
    line = ", ".join(parts)
    return line + (f"; SIMD: {' '.join(cpu.simd)}" if cpu.simd else "")


def _ram(profile: HardwareProfile) -> str:
    if not profile.ram_total_bytes:
        return "unknown"
    line = f"{format_size(profile.ram_total_bytes)} total"
    if profile.ram_available_bytes is not None:
        line += f", {format_size(profile.ram_available_bytes)} available"
    if profile.ram_bandwidth_gbs:
        source = profile.ram_bandwidth_source or "source unknown"
        line += f"; {profile.ram_bandwidth_gbs:g} GB/s ({source})"
    return line


def _gpu(gpu: GpuDevice) -> list[Fact]:
    memory = f"{format_size(gpu.memory_total_bytes)}{' unified' if gpu.unified_memory else ''}"
    if gpu.memory_free_bytes is not None:
        memory += f", {format_size(gpu.memory_free_bytes)} free"
    facts = [Fact(f"GPU {gpu.index}", f"{gpu.name}, {memory}")]
    if gpu.usable_memory_bytes is not None:
        facts.append(
            Fact(
                None,
                f"GPU may use {format_size(gpu.usable_memory_bytes)} ({gpu.usable_memory_source})",
            )
        )
    if gpu.memory_bandwidth_gbs:
        source = gpu.memory_bandwidth_source or "source unknown"
        facts.append(Fact(None, f"bandwidth {gpu.memory_bandwidth_gbs:g} GB/s ({source})"))
    details = [
        f"driver {gpu.driver_version}" if gpu.driver_version else "",
        f"CUDA {gpu.cuda_version}" if gpu.cuda_version else "",
        f"compute capability {gpu.compute_capability}" if gpu.compute_capability else "",
        f"drawing {gpu.power_draw_w:.1f} W" if gpu.power_draw_w is not None else "",
    ]
    if any(details):
        facts.append(Fact(None, ", ".join(detail for detail in details if detail)))
    if gpu.usable_by_build and gpu.backend:
        facts.append(Fact(None, f"usable: yes, through {backend_label(gpu.backend)}"))
    else:
        facts.append(Fact(None, f"usable: no, {gpu.unusable_reason or 'no backend for it'}"))
    return facts
