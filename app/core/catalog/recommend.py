"""Which quant of a model to run on a machine: a pure function of profile, variants, context, goal.

For every variant: where it would run (all on the GPU, some layers on the GPU, MoE experts in
RAM, CPU only, or not at all), the memory on each side, the expected decode speed and the
quality cost. Speed is memory-bound decoding (docs/memory-fit.md): efficiency × bandwidth ÷ bytes
read per token, where a MoE model reads only its active experts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from app.core.catalog.calibration import Correction
from app.core.catalog.estimator import (
    LoadPlan,
    MemoryEstimate,
    ModelFacts,
    estimate,
    layers_that_fit,
)
from app.core.catalog.fit import Machine, VerdictKind, estimate_with, placement
from app.core.catalog.quants import QuantQuality, quant_quality
from app.core.hardware.profile import HardwareProfile
from app.core.load_options import KvCacheType

Goal = Literal["balanced", "quality", "speed"]

READABLE_TOKENS_PER_S = 10.0  # "balanced" prefers quality among variants at least this fast
CPU_EFFICIENCY = 0.6  # share of RAM bandwidth CPU decoding reaches


@dataclass(frozen=True)
class Variant:
    """One quant of a model, with the facts the estimator needs."""

    quant: str
    facts: ModelFacts
    file_size: int | None = None
    size_basis: str = "file size"  # "file size on disk", "Hub listing", "estimated: params × bpw"
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    variant: Variant
    kind: VerdictKind
    label: str  # "fits on GPU", "partial offload: 30/48 layers on GPU", ...
    reason: str
    quality: QuantQuality
    estimate: MemoryEstimate  # of the load this verdict plans
    gpu_bytes: int = 0
    ram_bytes: int = 0
    gpu_layers: int = 0
    moe_experts_on_cpu_layers: int = 0
    tokens_per_s: float | None = None
    speed_basis: str = ""
    recommended: bool = False

    @property
    def fits(self) -> bool:
        return self.kind != "no_fit"


def layer_read_bytes(facts: ModelFacts, il: int) -> tuple[int, float]:
    """Bytes decoding reads per token from block ``il``: (its own weights, its active experts)."""
    frac = facts.n_expert_used / facts.n_expert if facts.is_moe else 1.0
    return facts.layer_bytes[il], facts.layer_expert_bytes[il] * frac


def _speed(m: Machine, facts: ModelFacts, est: MemoryEstimate) -> tuple[float | None, str]:
    """Decode tokens/s from bytes read per token on each side."""
    n = facts.n_layers
    first_gpu = n - est.gpu_layers
    gpu_read = cpu_read = 0.0
    for il in range(n):
        layer, experts = layer_read_bytes(facts, il)
        on_gpu = il >= first_gpu
        gpu_read += layer if on_gpu else 0
        cpu_read += 0 if on_gpu else layer
        if on_gpu and il >= est.plan.moe_experts_on_cpu_layers:
            gpu_read += experts
        else:
            cpu_read += experts
    out = facts.output_bytes + facts.tied_output_bytes
    gpu_read, cpu_read = (
        (gpu_read + out, cpu_read) if est.output_on_gpu else (gpu_read, cpu_read + out)
    )
    seconds = 0.0
    if gpu_read:
        if not m.gpu_bandwidth:
            return None, "unknown: no GPU memory bandwidth figure"
        seconds += gpu_read / (m.gpu_bandwidth * 1e9 * m.gpu_efficiency)
    if cpu_read:
        if not m.ram_bandwidth:
            return None, "unknown: no RAM bandwidth figure"
        seconds += cpu_read / (m.ram_bandwidth * 1e9 * CPU_EFFICIENCY)
    if seconds <= 0:
        return None, "unknown"
    moe = ", active experts only" if facts.is_moe else ""
    return 1 / seconds, f"estimated: bandwidth × efficiency ÷ weights read per token{moe}"


def _min_moe_experts_on_cpu(m: Machine, facts: ModelFacts, plan: LoadPlan) -> int | None:
    """Fewest leading layers whose experts go to RAM so the rest fits on the GPU."""
    lo, hi = 0, facts.n_layers
    if not m.fits(estimate(facts, replace(plan, moe_experts_on_cpu_layers=hi))):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if m.fits(estimate(facts, replace(plan, moe_experts_on_cpu_layers=mid))):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _judge(
    m: Machine,
    variant: Variant,
    n_ctx: int,
    kv_cache_type: KvCacheType,
    flash: bool,
    correction: Correction | None = None,
) -> Verdict:
    """The best placement of one variant: all on the GPU, MoE experts in RAM, some layers on
    the GPU, CPU only; each judged by ``Machine.fits`` and named by ``placement``."""
    facts = variant.facts
    # Estimates on the machine Homefire measured itself on carry the learned correction.
    estimate_here = estimate_with(correction)
    quality = quant_quality(variant.quant)
    n = facts.n_layers
    base = LoadPlan(n_ctx=n_ctx, kv_cache_type=kv_cache_type, flash_attn=flash)

    def verdict(reason: str, est: MemoryEstimate) -> Verdict:
        kind, label = placement(facts, est)
        tps, basis = _speed(m, facts, est)
        return Verdict(
            variant, kind, label, reason, quality, est, est.gpu_bytes, est.ram_bytes,
            est.gpu_layers, est.plan.moe_experts_on_cpu_layers, tps, basis,
        )  # fmt: skip

    if m.backend:
        gplan = replace(base, gpu_backend=m.backend, n_gpu_layers=-1)
        full = estimate_here(facts, gplan)
        if m.fits(full):
            return verdict("every layer and the KV cache fit in GPU memory", full)
        if facts.is_moe:
            k = _min_moe_experts_on_cpu(m, facts, gplan)
            if k is not None and k < n:
                est = estimate_here(facts, replace(gplan, moe_experts_on_cpu_layers=k))
                return verdict(
                    "attention, shared weights and KV on the GPU; the rest of the experts in RAM",
                    est,
                )
        layers = layers_that_fit(facts, replace(gplan, n_gpu_layers=0), m.gpu_budget)
        if 0 < layers < n:
            est = estimate_here(facts, replace(gplan, n_gpu_layers=layers))
            if m.fits(est):
                return verdict("too big for GPU memory; the first layers run on the CPU", est)
    cpu = estimate_here(facts, base)
    short = m.shortfall(cpu)
    if short is None:
        why = m.unusable_note or ("no GPU" if not m.gpus else "does not fit in GPU memory")
        return verdict(f"runs from RAM ({why})", cpu)
    return Verdict(
        variant, "no_fit", "does not fit", short, quality, cpu, cpu.gpu_bytes, cpu.ram_bytes,
        cpu.gpu_layers, cpu.plan.moe_experts_on_cpu_layers,
    )  # fmt: skip


def recommend(
    profile: HardwareProfile,
    variants: list[Variant],
    n_ctx: int,
    goal: Goal = "balanced",
    kv_cache_type: KvCacheType = "f16",
    correction: Correction | None = None,
) -> list[Verdict]:
    """Every variant's verdict, best quality first; the pick has ``recommended=True``.

    ``correction`` is what this machine's own loads taught (FitCalibration); only pass it when
    ``profile`` is the machine it was measured on.
    """
    m = Machine.of(profile)
    flash = kv_cache_type != "f16"  # llama.cpp needs flash attention for a quantized KV cache
    verdicts = [_judge(m, v, n_ctx, kv_cache_type, flash, correction) for v in variants]
    verdicts.sort(key=lambda v: (v.quality.rank_loss, v.variant.file_size or 0))
    pick = _pick(verdicts, goal)
    return [replace(v, recommended=v is pick) for v in verdicts]


def _pick(verdicts: list[Verdict], goal: Goal) -> Verdict | None:
    fitting = [v for v in verdicts if v.fits]
    if not fitting:
        return None
    if goal == "quality":
        return fitting[0]
    if goal == "speed":
        decent = [v for v in fitting if v.quality.band in _GOOD_BANDS]
        return max(decent or fitting, key=lambda v: v.tokens_per_s or 0.0)
    # balanced: all on the GPU at a small loss if possible, else the best quality still readable.
    on_gpu = [v for v in fitting if v.kind == "gpu" and v.quality.band in _GOOD_BANDS]
    readable = [v for v in fitting if (v.tokens_per_s or 0.0) >= READABLE_TOKENS_PER_S]
    return (on_gpu or readable or fitting)[0]


_GOOD_BANDS = ("lossless", "near-lossless", "small")
