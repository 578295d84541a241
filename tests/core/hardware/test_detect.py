"""detect() end to end: every probe fed from recordings, and every probe failing at once."""

from __future__ import annotations

from pathlib import Path

import pynvml

from app.core.hardware.build import BuildDevice, BuildFacts
from app.core.hardware.detect import detect
from app.core.storage.paths import AppPaths
from tests.core.hardware.recorded import (
    RecordedNvml,
    RecordedRunner,
    fixture,
    rtx_4090,
    sysfs_tree,
)

GIB = 1024**3


def _cpu_only_build() -> BuildFacts:
    return BuildFacts("0.3.36", False, ("CPU",), (), "CPU : AVX2 = 1 |")


def _no_psutil() -> tuple[int, int]:
    raise OSError("psutil unavailable")


def test_a_linux_box_with_an_rtx_4090_and_a_cpu_only_build(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cpuinfo").write_text(fixture("ryzen-9-9950x.proc-cpuinfo.txt"))
    profile = detect(
        paths=AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path / "home")}),
        system="Linux",
        machine="x86_64",
        runner=RecordedRunner({}),
        proc_root=proc,
        sysfs_root=tmp_path / "sys",
        nvml_loader=lambda: RecordedNvml(rtx_4090()),
        build_loader=_cpu_only_build,
        read_memory=lambda: (64 * GIB, 50 * GIB),
        cpu_count=lambda logical: None,
        disk_free=lambda path: 500 * GIB,
    )

    assert profile.source == "detected"
    assert profile.os == "linux"
    assert profile.cpu.brand == "AMD Ryzen 9 9950X 16-Core Processor"
    assert (profile.ram_total_bytes, profile.ram_available_bytes) == (64 * GIB, 50 * GIB)
    assert profile.disk_free_bytes == 500 * GIB
    assert profile.backends == ("cpu",)
    assert profile.llama_cpp_version == "0.3.36"
    (gpu,) = profile.gpus
    assert gpu.name == "NVIDIA GeForce RTX 4090"
    assert gpu.usable_by_build is False
    assert gpu.unusable_reason is not None
    assert "-DGGML_CUDA=on" in gpu.unusable_reason
    assert [part.part for part in profile.absent] == ["amd"]


def test_nvidia_and_amd_gpus_are_numbered_in_one_sequence(tmp_path: Path) -> None:
    profile = detect(
        paths=AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path / "home")}),
        system="linux",
        machine="x86_64",
        runner=RecordedRunner({}),
        proc_root=tmp_path,
        sysfs_root=sysfs_tree(tmp_path / "sys", "rx-6900-xt-16gb.sysfs.txt"),
        nvml_loader=lambda: RecordedNvml(rtx_4090()),
        build_loader=lambda: BuildFacts("x", True, ("CUDA", "Vulkan", "CPU"), (), ""),
        read_memory=lambda: (32 * GIB, 16 * GIB),
    )

    assert [(gpu.index, gpu.vendor, gpu.backend, gpu.usable_by_build) for gpu in profile.gpus] == [
        (0, "nvidia", "cuda", True),
        (1, "amd", "vulkan", True),
    ]


def test_a_mac_studio_m3_ultra_without_sysctl_is_read_from_system_profiler(tmp_path: Path) -> None:
    runner = RecordedRunner(
        {
            ("system_profiler", "SPHardwareDataType"): fixture(
                "mac-studio-m3-ultra-512gb.system_profiler-SPHardwareDataType.txt"
            )
        }
    )
    profile = detect(
        paths=AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path)}),
        system="Darwin",
        machine="arm64",
        runner=runner,
        build_loader=lambda: BuildFacts("x", True, ("MTL", "CPU"), (), ""),
        read_memory=_no_psutil,
        disk_free=lambda path: 1,
    )

    assert profile.os == "darwin"
    assert profile.cpu.brand == "Apple M3 Ultra"
    assert (profile.cpu.performance_cores, profile.cpu.efficiency_cores) == (24, 8)
    # psutil failed, so RAM is the chip's unified memory as system_profiler stated it.
    assert (profile.ram_total_bytes, profile.ram_available_bytes) == (512 * GIB, None)
    (gpu,) = profile.gpus
    assert (gpu.vendor, gpu.backend, gpu.usable_by_build) == ("apple", "metal", True)
    assert gpu.memory_bandwidth_gbs == 819
    assert [part.part for part in profile.absent] == ["sysctl"]
    assert ("sysctl", "-a") in runner.calls


def test_on_a_mac_metal_s_own_limit_read_through_llama_cpp_is_used(tmp_path: Path) -> None:
    metal = BuildDevice("MTL0", "Apple M4 Max", "gpu", 50 * GIB, 50 * GIB)
    runner = RecordedRunner({("sysctl", "-a"): fixture("apple-m4-max-64gb.sysctl.txt")})
    profile = detect(
        paths=AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path)}),
        system="darwin",
        machine="arm64",
        runner=runner,
        build_loader=lambda: BuildFacts("x", True, ("MTL", "CPU"), (metal,), ""),
        read_memory=lambda: (64 * GIB, 20 * GIB),
        disk_free=lambda path: 1,
    )

    (gpu,) = profile.gpus
    assert gpu.usable_memory_bytes == 50 * GIB
    assert gpu.usable_memory_source is not None
    assert gpu.usable_memory_source.startswith("measured:")
    assert profile.cpu.performance_cores == 12
    assert profile.absent == ()
    assert runner.calls == [("sysctl", "-a")]  # system_profiler is slow; not needed here


def test_when_every_probe_fails_detect_still_answers_with_reasons(tmp_path: Path) -> None:
    def no_build() -> BuildFacts:
        raise ImportError("No module named 'llama_cpp'")

    def no_disk(path: Path) -> int:
        raise OSError(5, "Input/output error")

    profile = detect(
        paths=AppPaths.from_env({"HOMEFIRE_HOME": str(tmp_path)}),
        system="linux",
        machine="aarch64",
        runner=RecordedRunner({}),
        proc_root=tmp_path / "no-proc",
        sysfs_root=tmp_path / "no-sys",
        nvml_loader=lambda: RecordedNvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND),
        build_loader=no_build,
        read_memory=_no_psutil,
        cpu_count=lambda logical: None,
        disk_free=no_disk,
    )

    assert profile.gpus == ()
    assert profile.backends == ("cpu",)
    assert profile.cpu.arch == "arm64"
    assert profile.ram_total_bytes == 0
    assert {part.part for part in profile.absent} == {
        "llama.cpp build",
        "cpu",
        "nvidia",
        "amd",
        "ram",
        "disk",
    }
    assert all(part.reason for part in profile.absent)


def test_detect_on_this_machine_never_raises() -> None:
    profile = detect()

    assert profile.ram_total_bytes > 0
    assert profile.cpu.logical_cores
    assert "cpu" in profile.backends
