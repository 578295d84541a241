"""Apple Silicon from recorded sysctl dumps, system_profiler lines and llama.cpp Metal logs."""

from __future__ import annotations

import pytest

from app.core.hardware.apple import (
    apple_from_sysctl,
    apple_gpu,
    default_working_set,
    parse_system_profiler_hardware,
    working_set_limit,
)
from app.core.hardware.sysctl import parse_sysctl
from tests.core.hardware.recorded import fixture, metal_working_set_bytes

GIB = 1024**3


def test_an_m3_max_sysctl_dump_gives_chip_memory_cores_and_its_binned_bandwidth() -> None:
    hardware = apple_from_sysctl(parse_sysctl(fixture("apple-m3-max-36gb.sysctl.txt")))

    assert hardware is not None
    assert hardware.chip == "Apple M3 Max"
    assert hardware.memory_bytes == 38654705664  # 36 GiB
    assert (hardware.total_cores, hardware.performance_cores, hardware.efficiency_cores) == (
        14,
        10,
        4,
    )
    gpu = apple_gpu(hardware)
    assert gpu.unified_memory is True
    assert gpu.backend == "metal"
    # The 14-core M3 Max ships with the 30-core GPU and 300 GB/s, not the 40-core part's 400.
    assert gpu.memory_bandwidth_gbs == 300
    assert gpu.usable_memory_bytes == 38654705664 * 2 // 3
    assert gpu.usable_memory_source is not None
    assert gpu.usable_memory_source.startswith("estimated:")


def test_an_m4_max_sysctl_dump_is_the_full_chip() -> None:
    hardware = apple_from_sysctl(parse_sysctl(fixture("apple-m4-max-64gb.sysctl.txt")))

    assert hardware is not None
    assert hardware.chip == "Apple M4 Max"
    assert hardware.memory_bytes == 64 * GIB
    assert (hardware.performance_cores, hardware.efficiency_cores) == (12, 4)
    assert apple_gpu(hardware).memory_bandwidth_gbs == 546
    assert apple_gpu(hardware).usable_memory_bytes == 48 * GIB


def test_a_mac_studio_m3_ultra_512gb_from_system_profiler() -> None:
    hardware = parse_system_profiler_hardware(
        fixture("mac-studio-m3-ultra-512gb.system_profiler-SPHardwareDataType.txt")
    )

    assert hardware is not None
    assert hardware.chip == "Apple M3 Ultra"
    assert hardware.memory_bytes == 512 * GIB
    assert (hardware.total_cores, hardware.performance_cores, hardware.efficiency_cores) == (
        32,
        24,
        8,
    )
    gpu = apple_gpu(hardware)
    assert gpu.memory_bandwidth_gbs == 819
    recorded = metal_working_set_bytes("mac-studio-m3-ultra-512gb.llama-metal-init.txt")
    assert gpu.usable_memory_bytes == pytest.approx(recorded, rel=1e-6)


@pytest.mark.parametrize(
    ("recording", "chip"),
    [
        ("macbook-pro-m1-pro-16gb.system_profiler-SPHardwareDataType-mini.txt", "Apple M1 Pro"),
        ("macbook-pro-m2-pro-16gb.system_profiler-SPHardwareDataType-mini.txt", "Apple M2 Pro"),
    ],
)
def test_system_profiler_mini_output_parses(recording: str, chip: str) -> None:
    hardware = parse_system_profiler_hardware(fixture(recording))

    assert hardware is not None
    assert hardware.chip == chip
    assert hardware.memory_bytes == 16 * GIB
    assert apple_gpu(hardware).memory_bandwidth_gbs == 200


@pytest.mark.parametrize(
    ("recording", "ram_gib"),
    [
        ("apple-m1-family-macbook-pro-16gb.llama-metal-init.txt", 16),
        ("apple-m1-max-32gb.llama-metal-init.txt", 32),
        ("apple-m2-max-32gb.llama-metal-overcommit.txt", 32),
        ("apple-m2-max-96gb.llama-metal-init.txt", 96),
        ("mac-studio-m3-ultra-512gb.llama-metal-init.txt", 512),
    ],
)
def test_the_default_gpu_share_matches_what_metal_reported_on_real_macs(
    recording: str, ram_gib: int
) -> None:
    estimate, _ = default_working_set(ram_gib * GIB)

    # The logs print two decimals, so agreement is to about a part in a million.
    assert estimate == pytest.approx(metal_working_set_bytes(recording), rel=1e-6)


def test_a_raised_wired_limit_wins_over_the_default_and_metal_wins_over_both() -> None:
    assert working_set_limit(96 * GIB, 90_000, None) == (
        90_000 * 1024**2,
        "set: iogpu.wired_limit_mb",
    )
    assert working_set_limit(96 * GIB, 0, None)[0] == 72 * GIB  # 0 means the macOS default
    measured, source = working_set_limit(96 * GIB, 90_000, 80 * GIB)
    assert measured == 80 * GIB
    assert source.startswith("measured:")


def test_text_that_names_no_apple_chip_gives_nothing() -> None:
    assert (
        parse_system_profiler_hardware("Model Name: iMac Pro\nProcessor Name: Intel Xeon W\n")
        is None
    )
    assert apple_from_sysctl({"machdep.cpu.brand_string": "Intel(R) Xeon(R) W-2140B"}) is None
