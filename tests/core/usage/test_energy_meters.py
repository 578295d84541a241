"""Energy is measured from real counters, or reported as not measured; never estimated."""

from __future__ import annotations

import os
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from app.core.usage.energy import NvmlEnergyMeter, RaplEnergyMeter, open_energy_meter

from .nvml_double import FakeNvml


def test_nvml_energy_is_the_counter_difference_summed_over_gpus() -> None:
    # Readings at open (probe), start and finish for each GPU, in millijoules.
    gpu0 = iter([5_000_000, 5_000_100, 5_421_350])
    gpu1 = iter([9_000_000, 9_000_000, 9_012_005])
    nvml = FakeNvml([gpu0, gpu1])
    meter = NvmlEnergyMeter.open(nvml)
    assert meter is not None
    reading = meter.start()
    assert meter.joules_since(reading) == Decimal("433.255")  # 421,250 + 12,005 mJ
    meter.close()
    assert nvml.initialised == 0


def test_a_gpu_without_the_counter_means_not_measured_not_a_partial_sum() -> None:
    nvml = FakeNvml([iter([1, 2, 3]), None])
    assert NvmlEnergyMeter.open(nvml) is None
    assert nvml.initialised == 0  # shut down again


def test_a_counter_that_restarted_is_not_measured() -> None:
    meter = NvmlEnergyMeter(FakeNvml([iter([800, 100])]), [0])
    assert meter.joules_since(meter.start()) is None
    assert meter.joules_since(None) is None


def test_the_real_pynvml_on_a_machine_without_nvidia_measures_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the pynvml shim's deprecation notice
        import pynvml
    if os.path.exists("/proc/driver/nvidia"):
        pytest.skip("this machine has an NVIDIA driver")
    assert NvmlEnergyMeter.open(pynvml) is None


def _zone(root: Path, name: str, label: str, energy: int, max_range: int) -> Path:
    zone = root / "class" / "powercap" / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(f"{label}\n")
    (zone / "energy_uj").write_text(f"{energy}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
    return zone / "energy_uj"


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    """The powercap layout of a two-socket Linux machine (the values are made up)."""
    root = tmp_path / "sys"
    _zone(root, "intel-rapl:0", "package-0", 1_000_000, 262_143_328_850)
    _zone(root, "intel-rapl:1", "package-1", 262_143_000_000, 262_143_328_850)
    # Overlapping zones that must not be added to the packages:
    _zone(root, "intel-rapl:0:0", "core", 400_000, 262_143_328_850)
    _zone(root, "intel-rapl:2", "psys", 9_000_000, 262_143_328_850)
    _zone(root, "intel-rapl-mmio:0", "package-0", 1_000_000, 262_143_328_850)
    return root


def test_rapl_sums_packages_and_unwraps_a_counter_that_wrapped(sysfs: Path) -> None:
    meter = RaplEnergyMeter.open(sysfs)
    assert meter is not None
    assert "2 CPU package" in meter.description
    reading = meter.start()
    powercap = sysfs / "class" / "powercap"
    (powercap / "intel-rapl:0" / "energy_uj").write_text("3500000\n")  # +2.5 J
    (powercap / "intel-rapl:1" / "energy_uj").write_text("671150\n")  # wrapped: +1 J
    (powercap / "intel-rapl:0:0" / "energy_uj").write_text("99999999\n")  # ignored
    assert meter.joules_since(reading) == Decimal("3.5")


def test_rapl_that_cannot_be_read_is_not_measured(sysfs: Path) -> None:
    energy = sysfs / "class" / "powercap" / "intel-rapl:1" / "energy_uj"
    energy.unlink()
    energy.mkdir()  # reading it fails like a permission error would: an OSError
    assert RaplEnergyMeter.open(sysfs) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_rapl_readable_only_by_root_is_not_measured(sysfs: Path) -> None:
    for zone in ("intel-rapl:0", "intel-rapl:1"):
        (sysfs / "class" / "powercap" / zone / "energy_uj").chmod(0)
    assert RaplEnergyMeter.open(sysfs) is None


def test_without_nvml_or_rapl_nothing_is_measured(tmp_path: Path) -> None:
    assert open_energy_meter(FakeNvml([], library=False), tmp_path) is None
    assert open_energy_meter(None, tmp_path) is None


def test_nvml_is_preferred_and_rapl_is_the_fallback(sysfs: Path) -> None:
    assert isinstance(open_energy_meter(FakeNvml([iter([1, 2])]), sysfs), NvmlEnergyMeter)
    assert isinstance(open_energy_meter(FakeNvml([], library=False), sysfs), RaplEnergyMeter)
