"""Test doubles that answer from recorded real outputs (tests/fixtures/hardware, see SOURCES.md).

Nothing here types a hardware number: every figure is parsed from a recording.
"""

from __future__ import annotations

import csv
import re
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

with warnings.catch_warnings():  # the deprecated `pynvml` distribution's import hook warns
    warnings.simplefilter("ignore", FutureWarning)
    import pynvml

from app.core.errors import HardwareProbeError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
MIB = 1024**2


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _mib(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*MiB\s*", text)
    assert match, text
    return int(match.group(1)) * MIB


def _milliwatts(text: str) -> int:
    match = re.fullmatch(r"\s*([\d.]+)\s*W\s*", text)
    assert match, text
    return round(float(match.group(1)) * 1000)


@dataclass
class RecordedGpu:
    name: str
    total_bytes: int
    free_bytes: int
    power_mw: int | None
    compute_capability: tuple[int, int] | None
    energy_mj: int | None = None  # no recording has one


@dataclass
class RecordedMachine:
    driver: str
    cuda: str  # "12.2"
    gpus: list[RecordedGpu]


def _capability(text: str) -> tuple[int, int]:
    major, minor = text.strip().split(".")
    return int(major), int(minor)


def rtx_4090() -> RecordedMachine:
    """``nvidia-smi -q -x`` of an RTX 4090, compute capability from ggml's CUDA init log."""
    root = ET.fromstring(fixture("rtx-4090.nvidia-smi-q-x.xml"))
    init = re.search(
        r"compute capability (\d+\.\d+)", fixture("rtx-4090.ggml-cuda-init.ollama-journald.txt")
    )
    assert init
    gpus = [
        RecordedGpu(
            name=gpu.findtext("product_name", ""),
            total_bytes=_mib(gpu.findtext("fb_memory_usage/total", "")),
            free_bytes=_mib(gpu.findtext("fb_memory_usage/free", "")),
            power_mw=_milliwatts(gpu.findtext("gpu_power_readings/power_draw", "")),
            compute_capability=_capability(init.group(1)),
        )
        for gpu in root.findall("gpu")
    ]
    return RecordedMachine(
        root.findtext("driver_version", ""), root.findtext("cuda_version", ""), gpus
    )


def _q_text_field(text: str, section: str | None, key: str) -> str:
    if section is not None:
        text = text[text.index(section) :]
    match = re.search(rf"^\s*{re.escape(key)}\s*:\s*(.+?)\s*$", text, re.MULTILINE)
    assert match, key
    return match.group(1)


def _h100_gpu(capture: str, capability: tuple[int, int]) -> tuple[str, str, RecordedGpu]:
    text = fixture(capture)
    gpu = RecordedGpu(
        name=_q_text_field(text, None, "Product Name"),
        total_bytes=_mib(_q_text_field(text, "FB Memory Usage", "Total")),
        free_bytes=_mib(_q_text_field(text, "FB Memory Usage", "Free")),
        # NVML's power usage on Ampere and newer is the one-second average nvidia-smi shows.
        power_mw=_milliwatts(_q_text_field(text, "GPU Power Readings", "Average Power Draw")),
        compute_capability=capability,
    )
    return (
        _q_text_field(text, None, "Driver Version"),
        _q_text_field(text, None, "CUDA Version"),
        gpu,
    )


def two_h100() -> RecordedMachine:
    """The recorded H100 80GB HBM3 twice: GPU 0 from its idle capture, GPU 1 from its load capture."""
    rows = list(csv.reader(fixture("h100-80gb-hbm3.nvidia-smi-query-gpu.idle.csv").splitlines()))
    fields = dict(zip((h.strip() for h in rows[0]), (v.strip() for v in rows[1]), strict=True))
    capability = _capability(fields["compute_cap"])
    driver, cuda, idle = _h100_gpu("h100-80gb-hbm3.nvidia-smi-q.idle.txt", capability)
    _, _, load = _h100_gpu("h100-80gb-hbm3.nvidia-smi-q.load.txt", capability)
    return RecordedMachine(driver, cuda, [idle, load])


class RecordedNvml:
    """Answers like pynvml (same function names, the real NVMLError classes) from a recording."""

    NVMLError = pynvml.NVMLError

    def __init__(
        self, machine: RecordedMachine | None = None, init_error: int | None = None
    ) -> None:
        self.machine = machine or RecordedMachine("", "", [])
        self.init_error = init_error
        self.initialised = 0
        self.shutdowns = 0

    def _check(self) -> None:
        if self.initialised <= self.shutdowns:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: int) -> RecordedGpu:
        self._check()
        return self.machine.gpus[handle]

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._check()
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.machine.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._check()
        if not 0 <= index < len(self.machine.gpus):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._gpu(handle).name

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> SimpleNamespace:
        gpu = self._gpu(handle)
        # The v1 struct's `used` is total - free, so it includes the driver-reserved memory.
        return SimpleNamespace(
            total=gpu.total_bytes, free=gpu.free_bytes, used=gpu.total_bytes - gpu.free_bytes
        )

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check()
        return self.machine.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check()
        major, minor = self.machine.cuda.split(".")
        return int(major) * 1000 + int(minor) * 10

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        capability = self._gpu(handle).compute_capability
        if capability is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return capability

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        power = self._gpu(handle).power_mw
        if power is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return power

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        energy = self._gpu(handle).energy_mj
        if energy is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return energy


def sysfs_tree(root: Path, *recordings: str, extra: dict[str, str] | None = None) -> Path:
    """A /sys tree from ``cardN/device/<file>:<line>`` recordings (one line per file line)."""
    files: dict[str, list[str]] = {}
    for recording in recordings:
        for line in fixture(recording).splitlines():
            relative, _, value = line.partition(":")
            files.setdefault(relative, []).append(value)
    for relative, value in (extra or {}).items():
        files[relative] = [value]
    drm = root / "class" / "drm"
    for relative, lines in files.items():
        path = drm / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def lact_vram_bytes(recording: str) -> int:
    match = re.search(r"^VRAM Size: (\d+) MiB$", fixture(recording), re.MULTILINE)
    assert match
    return int(match.group(1)) * MIB


def lact_revision(recording: str) -> str:
    match = re.search(
        r"^GPU Model: .*\(0x1002:0x[0-9A-F]{4}:(0x[0-9A-F]{2})\)$", fixture(recording), re.MULTILINE
    )
    assert match
    return match.group(1).lower()


def metal_working_set_bytes(recording: str) -> int:
    """``recommendedMaxWorkingSetSize`` from a llama.cpp log, in bytes.

    The old ``ggml_metal_init`` printed MiB (value / 1024 / 1024); the newer
    ``ggml_metal_device_init`` prints MB (value / 1e6). Some locales print a decimal comma.
    """
    text = fixture(recording)
    match = re.search(r"recommendedMaxWorkingSetSize\s*=\s*([\d.,]+) MB", text) or re.search(
        r"\(\s*[\d.]+\s*/\s*([\d.]+)\)",
        text,  # the over-commit warning "(used / limit)", old format
    )
    assert match, recording
    value = float(match.group(1).replace(",", "."))
    new_format = "ggml_metal_device_init" in text
    return round(value * 1e6) if new_format else round(value * MIB)


class RecordedRunner:
    """A command runner answering from recordings; commands it does not know fail like missing tools."""

    def __init__(self, answers: dict[tuple[str, ...], str]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str]) -> str:
        key = tuple(argv)
        self.calls.append(key)
        if key not in self.answers:
            raise HardwareProbeError(f"{argv[0]} is not installed")
        return self.answers[key]
