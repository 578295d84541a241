"""Energy per generation, measured or reported as not measured; never estimated.

A meter reads a cumulative energy counter before and after a generation; the difference is
the energy the device used meanwhile (the whole device, idle draw and other work included).

- NVIDIA: NVML's total-energy counter (millijoules since the driver loaded; Volta and newer),
  summed over every GPU. If any GPU lacks the counter, nothing is measured rather than a part.
- Linux elsewhere: the RAPL package counters in powercap sysfs (microjoules, wrapping at
  ``max_energy_range_uj``). Since the Platypus attack (CVE-2020-8694) kernels make
  ``energy_uj`` readable by root only, so on most desktops this is "not measured".
- Everything else (macOS, Windows, containers): not measured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

EnergyReading = tuple[int, ...]

_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class EnergyMeter(Protocol):
    """``start()`` before a generation, ``joules_since(reading)`` after it."""

    @property
    def description(self) -> str: ...

    def start(self) -> EnergyReading | None:
        """The counters now, or None when they cannot be read at this moment."""
        ...

    def joules_since(self, reading: EnergyReading | None) -> Decimal | None:
        """Energy used since ``reading``; None when it cannot be measured."""
        ...

    def close(self) -> None: ...


class NvmlEnergyMeter:
    """NVIDIA GPUs through NVML. ``pynvml`` is the module from the nvidia-ml-py package."""

    def __init__(self, pynvml: Any, handles: Sequence[Any]) -> None:
        self._nvml = pynvml
        self._handles = tuple(handles)

    @classmethod
    def open(cls, pynvml: Any) -> NvmlEnergyMeter | None:
        """A meter over every GPU, or None (no driver, no GPU, a GPU without the counter)."""
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            log.debug("NVML unavailable: %s", exc)
            return None
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            meter = cls(pynvml, handles)
            if count and meter.start() is not None:
                return meter
        except pynvml.NVMLError as exc:
            log.debug("NVML energy counter unavailable: %s", exc)
        pynvml.nvmlShutdown()
        return None

    @property
    def description(self) -> str:
        return f"{len(self._handles)} NVIDIA GPU(s), NVML energy counter"

    def start(self) -> EnergyReading | None:
        try:
            return tuple(
                int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
                for handle in self._handles
            )
        except self._nvml.NVMLError as exc:
            log.debug("cannot read the NVML energy counter: %s", exc)
            return None

    def joules_since(self, reading: EnergyReading | None) -> Decimal | None:
        if reading is None:
            return None
        now = self.start()
        if now is None or len(now) != len(reading):
            return None
        deltas = [after - before for before, after in zip(reading, now, strict=True)]
        if min(deltas) < 0:
            return None  # the driver reloaded and the counter restarted
        return Decimal(sum(deltas)) / 1000

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            log.debug("nvmlShutdown failed: %s", exc)


class RaplEnergyMeter:
    """CPU package energy from Linux powercap RAPL zones, summed over packages."""

    def __init__(self, zones: Sequence[tuple[Path, int]]) -> None:
        # (energy_uj file, max_energy_range_uj) per package zone
        self._zones = tuple(zones)

    @classmethod
    def open(cls, sysfs_root: Path = Path("/sys")) -> RaplEnergyMeter | None:
        """A meter over the readable package zones, or None if there are none to read."""
        powercap = sysfs_root / "class" / "powercap"
        zones: list[tuple[Path, int]] = []
        try:
            candidates = sorted(p for p in powercap.iterdir() if _PACKAGE_ZONE.match(p.name))
            for zone in candidates:
                # Top-level zones only, and only packages: "psys" (platform) and the nested
                # core/uncore/dram zones overlap the packages and would count energy twice.
                if not (zone / "name").read_text().strip().startswith("package"):
                    continue
                max_range = int((zone / "max_energy_range_uj").read_text())
                zones.append((zone / "energy_uj", max_range))
        except (OSError, ValueError) as exc:
            log.debug("RAPL zones unreadable under %s: %s", powercap, exc)
            return None
        meter = cls(zones)
        if not zones or meter.start() is None:
            return None
        return meter

    @property
    def description(self) -> str:
        return f"{len(self._zones)} CPU package(s), RAPL energy counter"

    def start(self) -> EnergyReading | None:
        try:
            return tuple(int(path.read_text()) for path, _ in self._zones)
        except (OSError, ValueError) as exc:
            # PermissionError on kernels that restrict energy_uj to root.
            log.debug("cannot read RAPL energy: %s", exc)
            return None

    def joules_since(self, reading: EnergyReading | None) -> Decimal | None:
        if reading is None:
            return None
        now = self.start()
        if now is None or len(now) != len(reading):
            return None
        total_uj = 0
        for (_, max_range), before, after in zip(self._zones, reading, now, strict=True):
            # The counter wraps to 0 after max_energy_range_uj; one wrap per generation is
            # all a reading can tell (a package at 100 W takes about 45 minutes to wrap).
            total_uj += after - before if after >= before else max_range - before + after
        return Decimal(total_uj) / 1_000_000

    def close(self) -> None:
        return None


def open_energy_meter(
    pynvml: Any | None, sysfs_root: Path = Path("/sys")
) -> NvmlEnergyMeter | RaplEnergyMeter | None:
    """The best meter this machine offers: NVML, else RAPL, else None (not measured)."""
    if pynvml is not None:
        meter = NvmlEnergyMeter.open(pynvml)
        if meter is not None:
            return meter
    return RaplEnergyMeter.open(sysfs_root)
