"""NVIDIA GPUs through NVML (the ``pynvml`` module of the ``nvidia-ml-py`` package).

Every NVML call may raise ``NVMLError``: no library (every Mac, most laptops), a driver that is
installed but not loaded, no device, or one query the card does not support (the energy counter
before Volta). A failed start makes the whole part absent; a failed query leaves that field None.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from app.core.hardware.probe import ProbeResult
from app.core.hardware.profile import AbsentPart, GpuDevice
from app.core.hardware.specs import gpu_bandwidth

T = TypeVar("T")

# NVML's error codes (nvml.h); the classes pynvml derives from them are matched by code.
_LIBRARY_NOT_FOUND = 12
_DRIVER_NOT_LOADED = 9
_NO_PERMISSION = 4


class Nvml(Protocol):
    """The part of pynvml Homefire calls; the real module and test doubles both satisfy it."""

    NVMLError: type[Exception]

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetName(self, handle: Any) -> str | bytes: ...
    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any: ...
    def nvmlSystemGetDriverVersion(self) -> str | bytes: ...
    def nvmlSystemGetCudaDriverVersion(self) -> int: ...
    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int: ...
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int: ...


NvmlLoader = Callable[[], Nvml]


def import_pynvml() -> Nvml:
    # nvidia-ml-py provides the `pynvml` module; the separate, deprecated `pynvml` distribution
    # (pulled in by some tools) hooks that import with a FutureWarning about itself, not about us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import pynvml

    module: Nvml = pynvml
    return module


@dataclass(frozen=True)
class GpuEnergySample:
    """One GPU's counters at one moment; None where the card or driver does not report them."""

    index: int
    name: str
    energy_mj: int | None  # millijoules since the driver was loaded (Volta and newer)
    power_draw_w: float | None


def _text(value: str | bytes) -> str:
    # Old nvidia-ml-py versions return bytes.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def cuda_version_text(encoded: int) -> str:
    """NVML encodes CUDA 12.2 as 12020."""
    return f"{encoded // 1000}.{(encoded % 1000) // 10}"


def _start_failure_reason(nvml: Nvml, exc: Exception) -> str:
    code = getattr(exc, "value", None)
    if code == _LIBRARY_NOT_FOUND:
        return "no NVIDIA driver: the NVML library (libnvidia-ml) was not found"
    if code == _DRIVER_NOT_LOADED:
        return "the NVIDIA driver is installed but not loaded"
    if code == _NO_PERMISSION:
        return "no permission to query the NVIDIA driver"
    return f"NVML could not start: {exc}"


def _start(loader: NvmlLoader) -> tuple[Nvml | None, str | None]:
    try:
        nvml = loader()
    except ImportError:
        return None, "nvidia-ml-py (pynvml) is not installed"
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return None, _start_failure_reason(nvml, exc)
    return nvml, None


def _optional(nvml: Nvml, query: Callable[[], T]) -> T | None:
    try:
        return query()
    except nvml.NVMLError:
        return None


def _device(nvml: Nvml, index: int, driver: str | None, cuda: str | None) -> GpuDevice:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    name = _text(nvml.nvmlDeviceGetName(handle))
    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
    capability = _optional(nvml, lambda: nvml.nvmlDeviceGetCudaComputeCapability(handle))
    power_mw = _optional(nvml, lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    energy = _optional(nvml, lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    bandwidth = gpu_bandwidth(name)
    return GpuDevice(
        vendor="nvidia",
        name=name,
        memory_total_bytes=int(memory.total),
        memory_free_bytes=int(memory.free),
        memory_used_bytes=int(memory.used),
        memory_bandwidth_gbs=bandwidth.gbs if bandwidth else None,
        memory_bandwidth_source=bandwidth.source if bandwidth else None,
        backend="cuda",
        driver_version=driver,
        cuda_version=cuda,
        compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
        power_draw_w=power_mw / 1000 if power_mw is not None else None,
        energy_mj=int(energy) if energy is not None else None,
        index=index,
    )


def probe_nvidia(loader: NvmlLoader = import_pynvml) -> ProbeResult[tuple[GpuDevice, ...]]:
    nvml, reason = _start(loader)
    if nvml is None:
        return ProbeResult.missing("nvidia", reason or "NVML is not available")
    try:
        driver_raw = _optional(nvml, nvml.nvmlSystemGetDriverVersion)
        cuda_raw = _optional(nvml, nvml.nvmlSystemGetCudaDriverVersion)
        driver = _text(driver_raw) if driver_raw is not None else None
        cuda = cuda_version_text(cuda_raw) if cuda_raw is not None else None
        gpus: list[GpuDevice] = []
        absent: list[AbsentPart] = []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                gpus.append(_device(nvml, index, driver, cuda))
            except nvml.NVMLError as exc:
                absent.append(AbsentPart(f"nvidia gpu {index}", f"NVML could not read it: {exc}"))
        return ProbeResult(tuple(gpus), tuple(absent))
    except nvml.NVMLError as exc:
        return ProbeResult.missing("nvidia", f"NVML stopped answering: {exc}")
    finally:
        _optional(nvml, nvml.nvmlShutdown)


def _energy_sample(nvml: Nvml, index: int) -> GpuEnergySample:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    energy = _optional(nvml, lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    power_mw = _optional(nvml, lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    return GpuEnergySample(
        index=index,
        name=_text(nvml.nvmlDeviceGetName(handle)),
        energy_mj=int(energy) if energy is not None else None,
        power_draw_w=power_mw / 1000 if power_mw is not None else None,
    )


def read_gpu_energy(loader: NvmlLoader = import_pynvml) -> ProbeResult[tuple[GpuEnergySample, ...]]:
    """Every NVIDIA GPU's energy counter and power draw now; take two readings around a run."""
    nvml, reason = _start(loader)
    if nvml is None:
        return ProbeResult.missing("nvidia", reason or "NVML is not available")
    try:
        count = nvml.nvmlDeviceGetCount()
        return ProbeResult(tuple(_energy_sample(nvml, index) for index in range(count)))
    except nvml.NVMLError as exc:
        return ProbeResult.missing("nvidia", f"NVML stopped answering: {exc}")
    finally:
        _optional(nvml, nvml.nvmlShutdown)


@dataclass(frozen=True)
class GpuLiveSample:
    """One GPU's memory use and power draw now (measured by the driver)."""

    index: int
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    power_draw_w: float | None


class GpuMonitor:
    """Keeps NVML open to sample every NVIDIA GPU cheaply, e.g. once a second for a live view."""

    def __init__(self, nvml: Nvml) -> None:
        self._nvml = nvml
        self._names: dict[int, str] = {}

    @classmethod
    def open(cls, loader: NvmlLoader = import_pynvml) -> tuple[GpuMonitor | None, str | None]:
        """A monitor, or None with the reason there is nothing to monitor."""
        nvml, reason = _start(loader)
        if nvml is None:
            return None, reason or "NVML is not available"
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            _optional(nvml, nvml.nvmlShutdown)
            return None, f"NVML stopped answering: {exc}"
        if count == 0:
            _optional(nvml, nvml.nvmlShutdown)
            return None, "NVML sees no NVIDIA GPU"
        return cls(nvml), None

    def sample(self) -> tuple[GpuLiveSample, ...]:
        nvml = self._nvml
        samples = []
        for index in range(nvml.nvmlDeviceGetCount()):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                if index not in self._names:
                    self._names[index] = _text(nvml.nvmlDeviceGetName(handle))
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except nvml.NVMLError:
                continue  # a GPU that stopped answering drops out of the live view
            power_mw = self._power_mw(handle)
            samples.append(
                GpuLiveSample(
                    index=index,
                    name=self._names[index],
                    memory_used_bytes=int(memory.used),
                    memory_total_bytes=int(memory.total),
                    power_draw_w=power_mw / 1000 if power_mw is not None else None,
                )
            )
        return tuple(samples)

    def _power_mw(self, handle: Any) -> int | None:
        return _optional(self._nvml, lambda: self._nvml.nvmlDeviceGetPowerUsage(handle))

    def close(self) -> None:
        _optional(self._nvml, self._nvml.nvmlShutdown)
