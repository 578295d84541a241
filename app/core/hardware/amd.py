"""AMD GPUs on Linux through the amdgpu driver's sysfs files (no ROCm Python libraries needed).

For each ``/sys/class/drm/cardN`` whose ``device/vendor`` is 0x1002: ``mem_info_vram_total`` and
``mem_info_vram_used`` in bytes. amdgpu leaves ``product_name`` empty on most consumer cards, so
the name comes from the PCI device id and revision (the pairs libdrm's ``amdgpu.ids`` lists).
"""

from __future__ import annotations

import re
from pathlib import Path

from app.core.hardware.command import TextReader, read_text_file
from app.core.hardware.probe import ProbeResult
from app.core.hardware.profile import AbsentPart, GpuDevice
from app.core.hardware.specs import gpu_bandwidth

AMD_VENDOR = "0x1002"

# (PCI device id, revision) -> marketing name, from libdrm's amdgpu.ids; revision None = any.
_NAMES: dict[tuple[str, str | None], str] = {
    ("744C", "C8"): "AMD Radeon RX 7900 XTX",
    ("744C", "CC"): "AMD Radeon RX 7900 XT",
    ("744C", "CE"): "AMD Radeon RX 7900 GRE",
    ("744C", None): "AMD Radeon RX 7900 series (Navi 31)",
    ("73BF", "C0"): "AMD Radeon RX 6900 XT",
    ("73BF", "C1"): "AMD Radeon RX 6800 XT",
    ("73BF", "C3"): "AMD Radeon RX 6800",
    ("73BF", None): "AMD Radeon RX 6800/6900 series (Navi 21)",
    ("15BF", None): "AMD Radeon 780M (Phoenix APU)",
    ("150E", None): "AMD Radeon 880M/890M (Strix Point APU)",
    ("1586", None): "AMD Radeon 8060S (Strix Halo APU)",
}
# Integrated GPUs: the VRAM file holds only the BIOS carve-out; the GPU really uses GTT (RAM).
_APU_DEVICE_IDS = {"15BF", "150E", "1586"}
_GTT_SOURCE = "measured: amdgpu GTT size (shared system RAM)"
_CARD = re.compile(r"card\d+")


def _read(read_text: TextReader, path: Path) -> str | None:
    try:
        return read_text(path).strip().strip("\x00").strip()
    except OSError:
        return None


def _read_int(read_text: TextReader, path: Path) -> int | None:
    text = _read(read_text, path)
    return int(text) if text is not None and text.isdigit() else None


def _pci_id(read_text: TextReader, device: Path) -> str | None:
    uevent = _read(read_text, device / "uevent") or ""
    match = re.search(r"^PCI_ID=[0-9A-Fa-f]{4}:([0-9A-Fa-f]{4})$", uevent, re.MULTILINE)
    if match:
        return match.group(1).upper()
    raw = _read(read_text, device / "device")
    return raw[2:].upper() if raw and raw.startswith("0x") else None


def amd_gpu_name(device_id: str | None, revision: str | None) -> str:
    if device_id is None:
        return "AMD GPU"
    rev = revision[2:].upper() if revision and revision.startswith("0x") else None
    exact = _NAMES.get((device_id, rev))
    return exact or _NAMES.get((device_id, None)) or f"AMD GPU (PCI id 1002:{device_id})"


def _card(card: Path, index: int, read_text: TextReader) -> GpuDevice | AbsentPart:
    device = card / "device"
    total = _read_int(read_text, device / "mem_info_vram_total")
    device_id = _pci_id(read_text, device)
    product = _read(read_text, device / "product_name")
    name = product or amd_gpu_name(device_id, _read(read_text, device / "revision"))
    if total is None:
        return AbsentPart(
            f"amd gpu {card.name}",
            f"{name}: cannot read {device / 'mem_info_vram_total'} (old amdgpu or no permission)",
        )
    is_apu = device_id in _APU_DEVICE_IDS
    gtt = _read_int(read_text, device / "mem_info_gtt_total")
    bandwidth = None if is_apu else gpu_bandwidth(name)
    used = _read_int(read_text, device / "mem_info_vram_used")
    return GpuDevice(
        vendor="amd",
        name=name,
        memory_total_bytes=total,
        memory_used_bytes=used,
        memory_free_bytes=max(total - used, 0) if used is not None else None,
        unified_memory=is_apu,
        usable_memory_bytes=gtt if is_apu and gtt else None,
        usable_memory_source=_GTT_SOURCE if is_apu and gtt else None,
        memory_bandwidth_gbs=bandwidth.gbs if bandwidth else None,
        memory_bandwidth_source=bandwidth.source if bandwidth else None,
        backend="rocm",
        index=index,
    )


def probe_amd(
    sysfs_root: Path = Path("/sys"), read_text: TextReader = read_text_file
) -> ProbeResult[tuple[GpuDevice, ...]]:
    drm = sysfs_root / "class" / "drm"
    try:
        cards = sorted(
            (path for path in drm.iterdir() if _CARD.fullmatch(path.name)),
            key=lambda path: int(path.name[4:]),
        )
    except OSError as exc:
        return ProbeResult.missing("amd", f"cannot list {drm}: {exc.strerror or exc}")
    gpus: list[GpuDevice] = []
    absent: list[AbsentPart] = []
    for card in cards:
        if _read(read_text, card / "device" / "vendor") != AMD_VENDOR:
            continue
        found = _card(card, len(gpus), read_text)
        if isinstance(found, AbsentPart):
            absent.append(found)
        else:
            gpus.append(found)
    if not gpus and not absent:
        return ProbeResult.missing("amd", "no AMD GPU under /sys/class/drm")
    return ProbeResult(tuple(gpus), tuple(absent))
