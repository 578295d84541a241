"""Hardware to plan with: machines a user may be thinking of buying, with spec-sheet figures.

Sizes a real card reports are taken from recorded ``nvidia-smi`` outputs (an RTX 4090 shows
24564 MiB, not 24 GiB); Apple GPU budgets come from the same default-share rule ``detect()`` uses,
and say "estimated" where no recording backs them. A PC's CPU and RAM speed are not part of its
GPU's spec, so the RAM bandwidth is a stated assumption (two DDR channels) and the CPU unspecified.
"""

from __future__ import annotations

from dataclasses import replace

from app.core.hardware.apple import AppleHardware, apple_cpu, apple_gpu
from app.core.hardware.profile import Backend, CpuInfo, GpuDevice, HardwareProfile
from app.core.hardware.specs import gpu_bandwidth

GIB = 1024**3
MIB = 1024**2

_NVIDIA_SMI_SOURCE = "recorded: nvidia-smi -q on a real {card} (shared/fixtures/hardware/{file})"


def _dual_channel(kind: str, mts: int) -> tuple[float, str]:
    gbs = 2 * 8 * mts / 1000  # two 64-bit channels
    return gbs, f"assumed: dual-channel {kind}-{mts}, 2 × 8 B × {mts} MT/s theoretical"


def _mac(
    name: str, hardware: AppleHardware, gpu_cores: int, sources: tuple[str, ...]
) -> HardwareProfile:
    gpu = apple_gpu(hardware)
    return HardwareProfile(
        name=name,
        source="builtin",
        os="darwin",
        cpu=apple_cpu(hardware),
        ram_total_bytes=hardware.memory_bytes,
        ram_bandwidth_gbs=gpu.memory_bandwidth_gbs,  # unified memory: one pool, one bus
        ram_bandwidth_source=gpu.memory_bandwidth_source,
        gpus=(_usable(gpu, "metal"),),
        backends=("cpu", "metal"),
        sources=(f"Apple spec: {hardware.chip}, {gpu_cores}-core GPU", *sources),
    )


def _usable(gpu: GpuDevice, backend: Backend) -> GpuDevice:
    # A planning profile assumes a llama-cpp-python build with the GPU's backend.
    return replace(gpu, backend=backend, usable_by_build=True, unusable_reason=None)


def _nvidia(name: str, memory_mib: int, capability: str, index: int) -> GpuDevice:
    bandwidth = gpu_bandwidth(name)
    return GpuDevice(
        vendor="nvidia",
        name=name,
        memory_total_bytes=memory_mib * MIB,
        memory_bandwidth_gbs=bandwidth.gbs if bandwidth else None,
        memory_bandwidth_source=bandwidth.source if bandwidth else None,
        backend="cuda",
        usable_by_build=True,
        compute_capability=capability,
        index=index,
    )


_PC_CPU = CpuInfo(
    brand="unspecified x86-64 desktop CPU", physical_cores=None, logical_cores=None, arch="x86_64"
)


def _pc(
    name: str,
    gpus: tuple[GpuDevice, ...],
    ram_gib: int,
    ram: tuple[float, str],
    sources: tuple[str, ...],
) -> HardwareProfile:
    return HardwareProfile(
        name=name,
        source="builtin",
        os="linux",
        cpu=_PC_CPU,
        ram_total_bytes=ram_gib * GIB,
        ram_bandwidth_gbs=ram[0],
        ram_bandwidth_source=ram[1],
        gpus=gpus,
        backends=("cpu", "cuda") if gpus else ("cpu",),
        sources=sources,
    )


def builtin_profiles() -> tuple[HardwareProfile, ...]:
    m3_ultra_note = "Apple spec: M3 Ultra 819 GB/s unified memory bandwidth (both CPU variants)"
    rtx_4090 = _NVIDIA_SMI_SOURCE.format(card="RTX 4090", file="rtx-4090.nvidia-smi-q-x.xml")
    rtx_3060 = _NVIDIA_SMI_SOURCE.format(
        card="RTX 3060 12 GB", file="rtx-3060-12gb.nvidia-smi-q-x.xml"
    )
    rtx_3090 = _NVIDIA_SMI_SOURCE.format(card="RTX 3090", file="rtx-3090.nvidia-smi-q-x.xml")
    return (
        _mac(
            "Mac Studio M3 Ultra 512GB",
            AppleHardware("Apple M3 Ultra", 512 * GIB, 32, 24, 8),
            80,
            (
                m3_ultra_note,
                "recorded: 32 cores (24P+8E) and a 464 GiB Metal working set on a real 512 GB "
                "Mac Studio (shared/fixtures/hardware/mac-studio-m3-ultra-512gb.*)",
            ),
        ),
        _mac(
            "Mac Studio M3 Ultra 256GB",
            AppleHardware("Apple M3 Ultra", 256 * GIB, 28, 20, 8),
            60,
            (m3_ultra_note, "assumed: the base 28-core CPU / 60-core GPU chip"),
        ),
        _mac(
            "Mac Studio M3 Ultra 96GB",
            AppleHardware("Apple M3 Ultra", 96 * GIB, 28, 20, 8),
            60,
            (m3_ultra_note, "Apple spec: 96 GB comes only with the 28-core CPU / 60-core GPU chip"),
        ),
        _mac(
            "MacBook Pro M4 Max 128GB",
            AppleHardware("Apple M4 Max", 128 * GIB, 16, 12, 4),
            40,
            ("Apple spec: 128 GB comes only with the 16-core CPU / 40-core GPU M4 Max, 546 GB/s",),
        ),
        _pc(
            "RTX 4090 24GB + 64GB RAM",
            (_nvidia("NVIDIA GeForce RTX 4090", 24564, "8.9", 0),),
            64,
            _dual_channel("DDR5", 5600),
            (rtx_4090, "NVIDIA spec: compute capability 8.9 (Ada)"),
        ),
        _pc(
            "RTX 3060 12GB + 32GB RAM",
            (_nvidia("NVIDIA GeForce RTX 3060", 12288, "8.6", 0),),
            32,
            _dual_channel("DDR4", 3200),
            (rtx_3060, "NVIDIA spec: compute capability 8.6 (Ampere)"),
        ),
        _pc(
            "2x RTX 3090 + 128GB RAM",
            (
                _nvidia("NVIDIA GeForce RTX 3090", 24576, "8.6", 0),
                _nvidia("NVIDIA GeForce RTX 3090", 24576, "8.6", 1),
            ),
            128,
            _dual_channel("DDR4", 3200),
            (rtx_3090, "NVIDIA spec: compute capability 8.6 (Ampere)"),
        ),
        _pc(
            "CPU only 32GB DDR5",
            (),
            32,
            _dual_channel("DDR5", 5600),
            ("no GPU: decode speed follows RAM bandwidth",),
        ),
    )
