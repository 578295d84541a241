"""``detect() -> HardwareProfile``: run every probe that applies to this OS and assemble the answer.

Each probe is optional: a missing driver, tool or permission adds an AbsentPart with the reason
and the rest of the profile still comes back. Every source is a parameter so tests feed recorded
outputs (sysctl text, sysfs trees, an NVML double) through the same code.
"""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.core.hardware.amd import probe_amd
from app.core.hardware.apple import apple_cpu, probe_apple, read_apple_gpu
from app.core.hardware.build import (
    BuildInfo,
    BuildLoader,
    load_build_facts,
    missing_backend_reason,
    probe_build,
)
from app.core.hardware.command import CommandRunner, TextReader, read_text_file, run_command
from app.core.hardware.cpu import (
    CpuCounter,
    cpu_from_sysctl,
    normalise_arch,
    probe_linux_cpu,
    psutil_cpu_count,
    with_live_counts,
)
from app.core.hardware.disk import DiskFree, probe_disk_free, shutil_disk_free
from app.core.hardware.memory import MemoryReader, RamReading, probe_ram, psutil_memory
from app.core.hardware.nvidia import NvmlLoader, import_pynvml, probe_nvidia
from app.core.hardware.probe import ProbeResult
from app.core.hardware.profile import (
    AbsentPart,
    Backend,
    CpuInfo,
    GpuDevice,
    GpuVendor,
    HardwareProfile,
)
from app.core.hardware.sysctl import read_sysctl
from app.core.storage.paths import AppPaths

THIS_MACHINE = "this machine"

# The backends that can drive each vendor's GPU, best first.
_CANDIDATE_BACKENDS: dict[GpuVendor, tuple[Backend, ...]] = {
    "nvidia": ("cuda", "vulkan"),
    "amd": ("rocm", "vulkan"),
    "apple": ("metal",),
    "intel": ("sycl", "vulkan"),
    "other": ("vulkan",),
}


def mark_usability(gpu: GpuDevice, build: BuildInfo | None, build_absent: str | None) -> GpuDevice:
    """Which backend would drive this GPU, and whether the installed build has it."""
    candidates = _CANDIDATE_BACKENDS[gpu.vendor]
    if build is None:
        reason = f"could not check the llama-cpp-python build: {build_absent or 'unknown'}"
        return replace(gpu, backend=candidates[0], usable_by_build=False, unusable_reason=reason)
    for backend in candidates:
        if backend in build.backends:
            return replace(gpu, backend=backend, usable_by_build=True, unusable_reason=None)
    return replace(
        gpu,
        backend=candidates[0],
        usable_by_build=False,
        unusable_reason=missing_backend_reason(candidates[0]),
    )


def _metal_working_set(build: BuildInfo | None) -> int | None:
    # ggml's Metal device reports recommendedMaxWorkingSetSize as its total memory.
    if build is None:
        return None
    for device in build.devices:
        if device.name.upper().startswith("MTL") and device.kind in ("gpu", "igpu"):
            return device.memory_total_bytes
    return None


def _unknown_cpu(machine: str) -> CpuInfo:
    return CpuInfo(
        brand=platform.processor() or "unknown CPU",
        physical_cores=None,
        logical_cores=None,
        arch=normalise_arch(machine) if machine else None,
    )


def _darwin_parts(
    runner: CommandRunner, build: BuildInfo | None, machine: str
) -> tuple[CpuInfo, list[GpuDevice], list[AbsentPart]]:
    absent: list[AbsentPart] = []
    sysctl = read_sysctl(runner)
    absent.extend(sysctl.absent)
    apple = probe_apple(sysctl.value, runner)
    cpu = cpu_from_sysctl(sysctl.value) if sysctl.value else None
    gpus: list[GpuDevice] = []
    if apple.value is not None:
        gpus.append(read_apple_gpu(apple.value, sysctl.value, _metal_working_set(build)))
        cpu = cpu or apple_cpu(apple.value)
    elif normalise_arch(machine) == "arm64":
        absent.extend(apple.absent)  # an Intel Mac simply has no Apple GPU to report
    return cpu or _unknown_cpu(machine), gpus, absent


def detect(
    *,
    paths: AppPaths | None = None,
    system: str | None = None,
    machine: str | None = None,
    runner: CommandRunner = run_command,
    read_text: TextReader = read_text_file,
    proc_root: Path = Path("/proc"),
    sysfs_root: Path = Path("/sys"),
    nvml_loader: NvmlLoader = import_pynvml,
    build_loader: BuildLoader = load_build_facts,
    read_memory: MemoryReader = psutil_memory,
    cpu_count: CpuCounter = psutil_cpu_count,
    disk_free: DiskFree = shutil_disk_free,
) -> HardwareProfile:
    os_name = (system or platform.system()).lower()
    machine = machine if machine is not None else platform.machine()
    absent: list[AbsentPart] = []

    def take(result: ProbeResult[Any]) -> None:
        absent.extend(result.absent)

    build = probe_build(build_loader)
    take(build)
    build_absent = build.absent[0].reason if build.absent else None

    gpus: list[GpuDevice] = []
    if os_name == "darwin":
        cpu, apple_gpus, darwin_absent = _darwin_parts(runner, build.value, machine)
        gpus.extend(apple_gpus)
        absent.extend(darwin_absent)
    elif os_name == "linux":
        cpu_result = probe_linux_cpu(machine, read_text, runner, proc_root)
        take(cpu_result)
        cpu = cpu_result.value or _unknown_cpu(machine)
    else:
        cpu = _unknown_cpu(machine)
    cpu = with_live_counts(cpu, cpu_count)

    if os_name != "darwin":  # no NVIDIA driver exists for Apple Silicon macOS
        nvidia = probe_nvidia(nvml_loader)
        take(nvidia)
        gpus.extend(nvidia.value or ())
    if os_name == "linux":
        amd = probe_amd(sysfs_root, read_text)
        take(amd)
        gpus.extend(amd.value or ())
    gpus = [
        replace(mark_usability(gpu, build.value, build_absent), index=index)
        for index, gpu in enumerate(gpus)
    ]

    ram = probe_ram(read_memory, read_text if os_name == "linux" else None, proc_root)
    unified = next((gpu for gpu in gpus if gpu.vendor == "apple"), None)
    if ram.value is None and unified is not None:
        # The chip's unified memory is the RAM; sysctl or system_profiler already said how much.
        ram = ProbeResult(RamReading(unified.memory_total_bytes, None))
    take(ram)
    disk = probe_disk_free((paths or AppPaths.from_env()).models_dir, disk_free)
    take(disk)

    return HardwareProfile(
        name=THIS_MACHINE,
        source="detected",
        os=os_name,
        cpu=cpu,
        ram_total_bytes=ram.value.total_bytes if ram.value else 0,
        ram_available_bytes=ram.value.available_bytes if ram.value else None,
        gpus=tuple(gpus),
        backends=build.value.backends if build.value else ("cpu",),
        llama_cpp_version=build.value.version if build.value else None,
        disk_free_bytes=disk.value,
        absent=tuple(absent),
    )
