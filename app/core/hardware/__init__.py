"""What the machine has: ``detect() -> HardwareProfile`` (probes) and planning profiles."""

from app.core.hardware.detect import detect
from app.core.hardware.nvidia import GpuEnergySample, read_gpu_energy
from app.core.hardware.profile import AbsentPart, CpuInfo, GpuDevice, HardwareProfile
from app.core.hardware.profiles import get_profile, list_profiles

__all__ = [
    "AbsentPart",
    "CpuInfo",
    "GpuDevice",
    "GpuEnergySample",
    "HardwareProfile",
    "detect",
    "get_profile",
    "list_profiles",
    "read_gpu_energy",
]
