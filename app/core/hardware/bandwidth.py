"""This machine's RAM bandwidth, measured when no spec figure is known, so speed is never "–".

Spec tables know GPUs and Apple chips by name, not the DIMMs of a PC, so a detected PC has no RAM
bandwidth and no CPU decode estimate. A short copy benchmark fills the gap: numpy copies a buffer
larger than the CPU's caches a few times and keeps the best run (fewest interruptions), counting
bytes read plus bytes written as STREAM's "Copy" does. It takes well under a second, runs once,
and is cached in the data folder with the date and the CPU it ran on; another CPU re-measures.
When the closed loop has timed real decoding here, that figure replaces this one (the catalog's
``decode_speed``), since decoding is what the estimate predicts.
"""

from __future__ import annotations

import itertools
import json
import logging
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from app.core.hardware.profile import CpuInfo, HardwareProfile
from app.core.sizes import MIB
from app.core.storage.atomic import write_atomic

log = logging.getLogger(__name__)

CACHE_FILE = "memory-bandwidth.json"
# Larger than the last-level cache of desktop CPUs (up to 128 MiB on AMD's X3D parts), so the copy
# streams from RAM.
BUFFER_BYTES = 256 * MIB
RUNS = 4
MAX_THREADS = 8  # enough to fill a desktop's or a Mac's memory channels from the CPU
TIME_BUDGET_S = 0.8  # stop early on a slow or busy machine; the best run so far stands
_CACHE_SCHEMA = 1
CHILD_TIMEOUT_S = 60.0  # the child's start plus the copies, on a machine busy with other work


@dataclass(frozen=True)
class RamBandwidth:
    """A RAM bandwidth figure for the estimator, with where it comes from."""

    gbs: float  # GB/s (10^9 bytes)
    source: str  # "measured: ..." or "measured from decoding: ..."


@dataclass(frozen=True)
class CopyMeasurement:
    gbs: float
    measured_at: datetime
    cpu: str  # the CPU identity it was measured on

    @property
    def bandwidth(self) -> RamBandwidth:
        return RamBandwidth(
            self.gbs,
            f"measured: copy benchmark of {BUFFER_BYTES // MIB} MiB on {self.measured_at:%Y-%m-%d}",
        )


def cpu_identity(cpu: CpuInfo) -> str:
    """What makes a cached figure stale: another CPU model, core count or architecture."""
    return f"{cpu.brand} | {cpu.logical_cores or '?'} threads | {cpu.arch or '?'}"


def copy_bandwidth(buffer_bytes: int = BUFFER_BYTES, runs: int = RUNS, threads: int = 1) -> float:
    """GB/s of the best of ``runs`` copies of ``buffer_bytes`` (read + written bytes).

    Runs alternate between one thread and ``threads`` (numpy releases the GIL while copying):
    one core cannot fill many memory channels, but on a busy machine more threads only queue.
    """
    source = np.ones(buffer_bytes, dtype=np.uint8)  # ones, not empty: every page is touched first
    target = np.zeros_like(source)
    target[:] = 0
    best = float("inf")
    started = time.perf_counter()
    with ThreadPoolExecutor(max(threads, 1), thread_name_prefix="bandwidth") as pool:
        for run in range(max(runs, 1)):
            count = max(threads, 1) if run % 2 else 1
            bounds = [buffer_bytes * i // count for i in range(count + 1)]
            parts = [(target[a:b], source[a:b]) for a, b in itertools.pairwise(bounds)]
            begin = time.perf_counter()
            list(pool.map(lambda part: np.copyto(*part), parts))
            best = min(best, time.perf_counter() - begin)
            if time.perf_counter() - started > TIME_BUDGET_S:
                break
    return 2 * buffer_bytes / max(best, 1e-9) / 1e9


def copy_bandwidth_in_child(threads: int) -> float:
    """``copy_bandwidth`` in a child process: its buffers never show in this process's resident
    memory, which a model load running meanwhile measures to learn the fit correction."""
    context = multiprocessing.get_context("forkserver")  # Linux and macOS, the platforms we ship
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
        return child.submit(copy_bandwidth, threads=threads).result(timeout=CHILD_TIMEOUT_S)


def measured_copy_bandwidth(
    cache_file: Path,
    cpu: CpuInfo,
    measure: Callable[[int], float] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> CopyMeasurement:
    """The cached measurement for this CPU, or a new one (then cached)."""
    identity = cpu_identity(cpu)
    cached = _read_cache(cache_file)
    if cached is not None and cached.cpu == identity:
        return cached
    threads = min(cpu.physical_cores or cpu.logical_cores or 1, MAX_THREADS)
    gbs = (measure or copy_bandwidth_in_child)(threads)
    measurement = CopyMeasurement(gbs, now(), identity)
    document = {
        "schema": _CACHE_SCHEMA,
        "gbs": measurement.gbs,
        "measured_at": measurement.measured_at.isoformat(),
        "cpu": identity,
    }
    try:
        write_atomic(cache_file, (json.dumps(document, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:  # a read-only data folder: measure again next time
        log.warning("cannot cache the memory bandwidth in %s: %s", cache_file, exc)
    return measurement


def _read_cache(path: Path) -> CopyMeasurement | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != _CACHE_SCHEMA:
            return None
        gbs = float(data["gbs"])
        if not gbs > 0:
            return None
        return CopyMeasurement(gbs, datetime.fromisoformat(data["measured_at"]), str(data["cpu"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("ignoring the memory bandwidth cache %s: %s", path, exc)
        return None


def with_ram_bandwidth(profile: HardwareProfile, bandwidth: RamBandwidth) -> HardwareProfile:
    return replace(profile, ram_bandwidth_gbs=bandwidth.gbs, ram_bandwidth_source=bandwidth.source)
