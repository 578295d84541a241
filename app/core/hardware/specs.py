"""Memory bandwidth by product name: spec-sheet figures, since no driver API reports them.

Every figure carries its source so the UI can say "spec figure" rather than "measured". GPU figures
are data rate × bus width / 8 as the vendors publish them; Apple's are Apple's own figures,
keyed on the chip name and GPU core count (binned chips have less bandwidth).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class SpecFigure:
    gbs: float  # GB/s, 10^9 bytes per second
    source: str


def _gpu(gbs: float, how: str) -> SpecFigure:
    return SpecFigure(gbs, f"spec: {how}")


# Longest fragment wins, so "rtx 3090 ti" is tried before "rtx 3090".
_GPU_BANDWIDTH: dict[str, SpecFigure] = {
    "rtx 5090": _gpu(1792, "NVIDIA RTX 5090, 28 Gbps GDDR7 × 512-bit"),
    "rtx 5080": _gpu(960, "NVIDIA RTX 5080, 30 Gbps GDDR7 × 256-bit"),
    "rtx 4090": _gpu(1008, "NVIDIA RTX 4090, 21 Gbps GDDR6X × 384-bit"),
    "rtx 4080 super": _gpu(736, "NVIDIA RTX 4080 SUPER, 23 Gbps GDDR6X × 256-bit"),
    "rtx 4080": _gpu(716.8, "NVIDIA RTX 4080, 22.4 Gbps GDDR6X × 256-bit"),
    "rtx 4070": _gpu(504, "NVIDIA RTX 4070, 21 Gbps GDDR6X × 192-bit"),
    "rtx 4060 ti": _gpu(288, "NVIDIA RTX 4060 Ti, 18 Gbps GDDR6 × 128-bit"),
    "rtx 3090 ti": _gpu(1008, "NVIDIA RTX 3090 Ti, 21 Gbps GDDR6X × 384-bit"),
    "rtx 3090": _gpu(936, "NVIDIA RTX 3090, 19.5 Gbps GDDR6X × 384-bit"),
    "rtx 3060": _gpu(360, "NVIDIA RTX 3060 12 GB, 15 Gbps GDDR6 × 192-bit"),
    "h100 80gb hbm3": _gpu(3350, "NVIDIA H100 SXM5 datasheet, 3.35 TB/s HBM3"),
    "h100 pcie": _gpu(2000, "NVIDIA H100 PCIe datasheet, 2 TB/s HBM2e"),
    "a100 80gb": _gpu(2039, "NVIDIA A100 80GB datasheet, 2,039 GB/s HBM2e"),
    "a100": _gpu(1555, "NVIDIA A100 40GB datasheet, 1,555 GB/s HBM2"),
    "rx 7900 xtx": _gpu(960, "AMD RX 7900 XTX, 20 Gbps GDDR6 × 384-bit"),
    "rx 7900 xt": _gpu(800, "AMD RX 7900 XT, 20 Gbps GDDR6 × 320-bit"),
    "rx 7900 gre": _gpu(576, "AMD RX 7900 GRE, 18 Gbps GDDR6 × 256-bit"),
    "rx 6900 xt": _gpu(512, "AMD RX 6900 XT, 16 Gbps GDDR6 × 256-bit"),
    "rx 6800 xt": _gpu(512, "AMD RX 6800 XT, 16 Gbps GDDR6 × 256-bit"),
    "rx 6800": _gpu(512, "AMD RX 6800, 16 Gbps GDDR6 × 256-bit"),
}

_APPLE_SOURCE = "spec: Apple's published unified-memory bandwidth"

# chip -> GB/s. Binned Max chips differ: Apple pairs the smaller GPU with the smaller CPU, so the
# CPU core count tells them apart when the GPU core count is unknown.
_APPLE_BANDWIDTH: dict[str, float] = {
    "m1": 68.25,
    "m1 pro": 200,
    "m1 max": 400,
    "m1 ultra": 800,
    "m2": 100,
    "m2 pro": 200,
    "m2 max": 400,
    "m2 ultra": 800,
    "m3": 100,
    "m3 pro": 150,
    "m3 ultra": 819,
    "m4": 120,
    "m4 pro": 273,
    "m5": 153.6,
}
# chip -> (CPU cores of the binned part, GPU cores of the binned part, binned GB/s, full GB/s)
_APPLE_BINNED_MAX: dict[str, tuple[int, int, float, float]] = {
    "m3 max": (14, 30, 300, 400),
    "m4 max": (14, 32, 410, 546),
}

_APPLE_CHIP = re.compile(r"\bM(\d+)(?:\s+(Pro|Max|Ultra))?\b", re.IGNORECASE)


def _normalise(name: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name.lower()).split())


def gpu_bandwidth(name: str) -> SpecFigure | None:
    """The spec bandwidth of a discrete GPU by its marketing name, or None when not in the table."""
    wanted = f" {_normalise(name)} "
    for fragment in sorted(_GPU_BANDWIDTH, key=len, reverse=True):
        if f" {fragment} " in wanted:
            return _GPU_BANDWIDTH[fragment]
    return None


def apple_chip_key(chip: str) -> str | None:
    """``"Apple M3 Max"`` -> ``"m3 max"``; None when the name is not an Apple Silicon chip."""
    match = _APPLE_CHIP.search(chip)
    if match is None:
        return None
    tier = f" {match.group(2).lower()}" if match.group(2) else ""
    return f"m{match.group(1)}{tier}"


def apple_bandwidth(
    chip: str, cpu_cores: int | None = None, gpu_cores: int | None = None
) -> SpecFigure | None:
    key = apple_chip_key(chip)
    if key is None:
        return None
    if key in _APPLE_BINNED_MAX:
        binned_cpu, binned_gpu, binned, full = _APPLE_BINNED_MAX[key]
        if gpu_cores is not None:
            is_binned = gpu_cores <= binned_gpu
            how = f"{gpu_cores}-core GPU"
        elif cpu_cores is not None:
            is_binned = cpu_cores <= binned_cpu
            size = "smaller" if is_binned else "full"
            how = f"{cpu_cores}-core CPU, which Apple pairs with the {size} GPU"
        else:
            return SpecFigure(binned, f"{_APPLE_SOURCE} (lower of the two {key} variants)")
        return SpecFigure(binned if is_binned else full, f"{_APPLE_SOURCE} ({how})")
    gbs = _APPLE_BANDWIDTH.get(key)
    return None if gbs is None else SpecFigure(gbs, _APPLE_SOURCE)
