"""System RAM: total and available, from psutil, else from ``/proc/meminfo``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.hardware.command import TextReader
from app.core.hardware.probe import ProbeResult

_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "b": 1}


@dataclass(frozen=True)
class RamReading:
    total_bytes: int
    available_bytes: int | None


# Returns (total, available) in bytes; psutil.virtual_memory in real use.
MemoryReader = Callable[[], tuple[int, int]]


def psutil_memory() -> tuple[int, int]:
    import psutil

    memory = psutil.virtual_memory()
    return int(memory.total), int(memory.available)


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` lines (``MemTotal:  65901572 kB``) as bytes; ``kB`` there means KiB."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if not sep or not parts or not parts[0].isdigit():
            continue
        unit = _UNITS.get(parts[1].lower(), 1) if len(parts) > 1 else 1
        fields[key.strip()] = int(parts[0]) * unit
    return fields


def ram_from_meminfo(fields: dict[str, int]) -> ProbeResult[RamReading]:
    total = fields.get("MemTotal")
    if total is None:
        return ProbeResult.missing("ram", "/proc/meminfo has no MemTotal line")
    available = fields.get("MemAvailable")
    if available is None and "MemFree" in fields:
        # Kernels before 3.14 have no MemAvailable; free + buffers + page cache is what `free`
        # itself showed as "-/+ buffers/cache" free on those systems.
        available = fields["MemFree"] + fields.get("Buffers", 0) + fields.get("Cached", 0)
    return ProbeResult(RamReading(total, available))


def probe_ram(
    read_memory: MemoryReader = psutil_memory,
    read_text: TextReader | None = None,
    proc_root: Path = Path("/proc"),
) -> ProbeResult[RamReading]:
    try:
        total, available = read_memory()
        return ProbeResult(RamReading(total, available))
    except Exception as exc:  # noqa: BLE001 - psutil raises OSError, RuntimeError or its own errors
        psutil_reason = f"psutil could not read memory: {exc}"
    if read_text is None:
        return ProbeResult.missing("ram", psutil_reason)
    try:
        text = read_text(proc_root / "meminfo")
    except OSError as exc:
        return ProbeResult.missing("ram", f"{psutil_reason}; /proc/meminfo: {exc.strerror or exc}")
    return ram_from_meminfo(parse_meminfo(text))
