"""RAM bandwidth learned from real decoding here, and the one rule for this machine's figure.

The closed loop records the fastest decode rate of each CPU load (``FitCalibration``). Bytes read
per token × tokens/s is the bandwidth decoding really reached; the estimator multiplies a
bandwidth by the CPU's efficiency, so the figure handed to it is that rate ÷ the efficiency, which
makes the estimate reproduce the measured speed for that model. The fastest recent load wins: a
reply that shared the CPU with other work under-reports. Only models big enough to be limited by
memory count (``MIN_BYTES_PER_TOKEN``).

``machine_bandwidth`` decides, in one place, which figure this machine's estimates use: a spec
figure when the profile has one, else decoding measured here, else the copy benchmark.
"""

from __future__ import annotations

import logging
from pathlib import Path

from app.core.catalog.calibration import FitCalibration
from app.core.catalog.estimator import ModelFacts
from app.core.catalog.gguf_header import read_local_model
from app.core.catalog.recommend import CPU_EFFICIENCY, layer_read_bytes
from app.core.errors import AppError
from app.core.hardware.bandwidth import (
    CACHE_FILE,
    RamBandwidth,
    measured_copy_bandwidth,
    with_ram_bandwidth,
)
from app.core.hardware.profile import HardwareProfile
from app.core.sizes import GIB

log = logging.getLogger(__name__)

RECENT_LOADS = 20
# Below this many bytes read per token a CPU's decode is bound by its arithmetic and per-token
# overhead more than by memory (the starter model runs far under its bandwidth), so its rate
# says little about the bandwidth a big model gets.
MIN_BYTES_PER_TOKEN = 1 * GIB


def bytes_read_per_token(facts: ModelFacts) -> float:
    """Weights decoding reads for one token (active experts only; the embedding is a lookup)."""
    total = sum(sum(layer_read_bytes(facts, il)) for il in range(facts.n_layers))
    return total + facts.output_bytes + facts.tied_output_bytes


def bandwidth_from_decoding(
    calibration: FitCalibration, min_bytes_per_token: int = MIN_BYTES_PER_TOKEN
) -> RamBandwidth | None:
    """The bandwidth the fastest recent CPU decode here implies, or None before any decode of
    a model reading at least ``min_bytes_per_token``."""
    best: tuple[float, float, str] | None = None  # (GB/s read, tok/s, model)
    for m in calibration.measurements(limit=RECENT_LOADS):
        if not m.measured_tokens_per_s or m.n_gpu_layers != 0:
            continue
        try:
            facts = ModelFacts.from_header(read_local_model(Path(m.model_path)))
        except (AppError, OSError) as exc:  # moved or deleted since: nothing to learn from it
            log.info("no bandwidth from %s: %s", m.model_path, exc)
            continue
        read = bytes_read_per_token(facts)
        if read < min_bytes_per_token:
            continue
        gbs = read * m.measured_tokens_per_s / 1e9
        if best is None or gbs > best[0]:
            best = (gbs, m.measured_tokens_per_s, m.model_name)
    if best is None or best[0] <= 0:
        return None
    gbs, rate, model = best
    return RamBandwidth(
        gbs / CPU_EFFICIENCY,
        f"measured from decoding: {model} at {rate:.0f} tok/s read {gbs:.1f} GB/s "
        f"(÷ {CPU_EFFICIENCY:g} CPU efficiency)",
    )


def machine_bandwidth(
    profile: HardwareProfile,
    data_dir: Path,
    calibration: FitCalibration | None,
    min_bytes_per_token: int = MIN_BYTES_PER_TOKEN,
) -> HardwareProfile:
    """``profile`` with a RAM bandwidth: its spec figure, else one measured on this machine.

    Blocking: the first call on a machine runs the copy benchmark (under a second). Only a
    detected profile is measured; a planning profile keeps what it says.
    """
    if profile.ram_bandwidth_gbs or profile.source != "detected":
        return profile
    learned = None
    if calibration is not None:
        learned = bandwidth_from_decoding(calibration, min_bytes_per_token)
    if learned is not None:
        return with_ram_bandwidth(profile, learned)
    copy = measured_copy_bandwidth(data_dir / CACHE_FILE, profile.cpu)
    return with_ram_bandwidth(profile, copy.bandwidth)
