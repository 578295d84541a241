"""Which quant of a model to run on a machine: a pure function of profile, variants, context, goal.

For every variant: where it would run (all on the GPU, some layers on the GPU, MoE experts in
RAM, CPU only, or not at all), the memory on each side, the expected decode speed and the
quality cost. Speed is memory-bound decoding (memory-fit.md §7): efficiency × bandwidth ÷ bytes
read per token, where a MoE model reads only its active experts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Literal

from app.core.catalog.calibration import Correction
from app.core.catalog.estimator import (
    GpuBackend,
    LoadPlan,
    MemoryEstimate,
    ModelFacts,
    estimate,
    layers_that_fit,
)
from app.core.catalog.quants import QuantQuality, quant_quality
from app.core.hardware.profile import GpuDevice, HardwareProfile

Goal = Literal["balanced", "quality", "speed"]
VerdictKind = Literal["gpu", "partial", "moe_offload", "cpu", "no_fit"]
GIB = 2**30

GPU_MARGIN = 1 * GIB  # llama.cpp --fit's default free-memory target per device
RAM_RESERVE_SHARE = 0.15  # planning for a machine we cannot see: leave this much to the OS
READABLE_TOKENS_PER_S = 10.0  # "balanced" prefers quality among variants at least this fast
# Share of theoretical bandwidth decoding reaches (llama-bench figures in memory-fit.md §7).
EFFICIENCY: dict[str, float] = {"cuda": 0.68, "rocm": 0.6, "vulkan": 0.55, "sycl": 0.5}
METAL_EFFICIENCY, METAL_ULTRA_EFFICIENCY = 0.58, 0.45
CPU_EFFICIENCY = 0.6


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
    gpu_bytes: int = 0
    ram_bytes: int = 0
    gpu_layers: int = 0
    cpu_moe_layers: int = 0
    tokens_per_s: float | None = None
    speed_basis: str = ""
    estimate: MemoryEstimate | None = None
    recommended: bool = False

    @property
    def fits(self) -> bool:
        return self.kind != "no_fit"


_GPU_BACKENDS: dict[str, GpuBackend] = {
    "cuda": "cuda", "metal": "metal", "vulkan": "vulkan", "rocm": "rocm", "sycl": "sycl"
}  # fmt: skip


@dataclass(frozen=True)
class _Machine:
    gpus: tuple[GpuDevice, ...]
    backend: GpuBackend | None
    gpu_budget: int  # over every usable GPU, margins taken off
    ram_budget: int
    unified: bool
    gpu_bandwidth: float | None
    gpu_efficiency: float
    ram_bandwidth: float | None
    unusable_note: str | None


def _usable_gpus(profile: HardwareProfile) -> tuple[tuple[GpuDevice, ...], str | None]:
    usable = tuple(
        g for g in profile.gpus if g.usable_by_build and g.backend and g.backend in profile.backends
    )
    skipped = [g for g in profile.gpus if g not in usable]
    note = None
    if skipped:
        g = skipped[0]
        note = (
            f"{g.name} not usable ({g.unusable_reason or 'this llama.cpp build cannot drive it'})"
        )
    if usable:  # llama.cpp splits layers over devices of one backend
        backend = usable[0].backend
        usable = tuple(g for g in usable if g.backend == backend)
    return usable, note


def _machine(profile: HardwareProfile) -> _Machine:
    gpus, note = _usable_gpus(profile)
    budget = 0
    for g in gpus:
        cap = g.usable_memory_bytes or g.memory_total_bytes
        if profile.source == "detected" and g.memory_free_bytes is not None:
            cap = min(cap, g.memory_free_bytes)
        budget += max(cap - GPU_MARGIN, 0)
    unified = any(g.unified_memory for g in gpus)
    if profile.source == "detected" and profile.ram_available_bytes is not None:
        ram = profile.ram_available_bytes
    else:
        ram = int(profile.ram_total_bytes * (1 - RAM_RESERVE_SHARE))
    bandwidths = [g.memory_bandwidth_gbs for g in gpus if g.memory_bandwidth_gbs]
    efficiency = 0.0
    if gpus:
        backend = gpus[0].backend or ""
        if backend == "metal":
            ultra = "ultra" in gpus[0].name.lower()
            efficiency = METAL_ULTRA_EFFICIENCY if ultra else METAL_EFFICIENCY
        else:
            efficiency = EFFICIENCY.get(backend, 0.5)
    return _Machine(
        gpus=gpus,
        backend=_GPU_BACKENDS.get(gpus[0].backend or "") if gpus else None,
        gpu_budget=budget,
        ram_budget=ram,
        unified=unified,
        gpu_bandwidth=min(bandwidths) if bandwidths and len(bandwidths) == len(gpus) else None,
        gpu_efficiency=efficiency,
        ram_bandwidth=profile.ram_bandwidth_gbs,
        unusable_note=note,
    )


def _fits(m: _Machine, est: MemoryEstimate) -> bool:
    gpu_extra = 0
    if len(m.gpus) > 1 and est.items:
        # Each extra device has its own context and compute buffer (estimate counts one).
        per_gpu = sum(i.bytes for i in est.items if i.device == "gpu" and "weights" not in i.label)
        per_gpu -= sum(i.bytes for i in est.items if i.label == "KV cache" and i.device == "gpu")
        gpu_extra = per_gpu * (len(m.gpus) - 1)
    gpu = est.gpu_bytes + gpu_extra
    if gpu > m.gpu_budget:
        return False
    if m.unified:  # one pool: the GPU's share and the CPU's share come out of the same RAM
        return gpu + est.ram_bytes <= m.ram_budget
    return est.ram_bytes <= m.ram_budget


def _speed(m: _Machine, facts: ModelFacts, est: MemoryEstimate) -> tuple[float | None, str]:
    """Decode tokens/s from bytes read per token on each side."""
    frac = facts.n_expert_used / facts.n_expert if facts.is_moe else 1.0
    n = facts.n_layers
    first_gpu = n - est.gpu_layers
    gpu_read = cpu_read = 0.0
    for il in range(n):
        layer = facts.layer_bytes[il]
        experts = facts.layer_expert_bytes[il] * frac
        on_gpu = il >= first_gpu
        gpu_read += layer if on_gpu else 0
        cpu_read += 0 if on_gpu else layer
        if on_gpu and il >= est.plan.n_cpu_moe:
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


def _min_cpu_moe(m: _Machine, facts: ModelFacts, plan: LoadPlan) -> int | None:
    """Fewest leading layers whose experts go to RAM so the rest fits on the GPU."""
    lo, hi = 0, facts.n_layers
    if not _fits(m, estimate(facts, replace(plan, n_cpu_moe=hi))):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(m, estimate(facts, replace(plan, n_cpu_moe=mid))):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _judge(
    m: _Machine,
    variant: Variant,
    n_ctx: int,
    kv_type: str,
    flash: bool,
    correction: Correction | None = None,
) -> Verdict:
    facts = variant.facts
    # Estimates on the machine Homefire measured itself on carry the learned correction.
    estimate_here = (
        partial(estimate, correction=correction.factor, correction_basis=correction.basis)
        if correction
        else estimate
    )
    quality = quant_quality(variant.quant)
    n = facts.n_layers
    base = LoadPlan(n_ctx=n_ctx, kv_type=kv_type, flash_attn=flash)  # type: ignore[arg-type]

    def verdict(kind: VerdictKind, label: str, reason: str, est: MemoryEstimate) -> Verdict:
        tps, basis = _speed(m, facts, est) if kind != "no_fit" else (None, "")
        return Verdict(
            variant, kind, label, reason, quality, est.gpu_bytes, est.ram_bytes,
            est.gpu_layers, est.plan.n_cpu_moe, tps, basis, est,
        )  # fmt: skip

    if m.gpus and m.backend:
        gplan = replace(base, gpu_backend=m.backend, n_gpu_layers=-1)
        full = estimate_here(facts, gplan)
        if _fits(m, full):
            return verdict(
                "gpu", "fits on GPU", "every layer and the KV cache fit in GPU memory", full
            )
        if facts.is_moe:
            k = _min_cpu_moe(m, facts, gplan)
            if k is not None and k < n:
                est = estimate_here(facts, replace(gplan, n_cpu_moe=k))
                return verdict(
                    "moe_offload",
                    f"MoE: experts of {k}/{n} layers in RAM",
                    "attention, shared weights and KV on the GPU; the rest of the experts in RAM",
                    est,
                )
        layers = layers_that_fit(facts, replace(gplan, n_gpu_layers=0), m.gpu_budget)
        if 0 < layers < n:
            est = estimate_here(facts, replace(gplan, n_gpu_layers=layers))
            if _fits(m, est):
                return verdict(
                    "partial",
                    f"partial offload: {layers}/{n} layers on GPU",
                    "too big for GPU memory; the first layers run on the CPU",
                    est,
                )
    cpu = estimate_here(facts, base)
    if cpu.ram_bytes <= m.ram_budget:
        why = m.unusable_note or ("no GPU" if not m.gpus else "does not fit in GPU memory")
        return verdict("cpu", "CPU only", f"runs from RAM ({why})", cpu)
    need = cpu.ram_bytes / GIB
    return verdict(
        "no_fit",
        "does not fit",
        f"needs about {need:.1f} GiB; {m.ram_budget / GIB:.1f} GiB of RAM is usable",
        cpu,
    )


def recommend(
    profile: HardwareProfile,
    variants: list[Variant],
    n_ctx: int,
    goal: Goal = "balanced",
    kv_type: str = "f16",
    correction: Correction | None = None,
) -> list[Verdict]:
    """Every variant's verdict, best quality first; the pick has ``recommended=True``.

    ``correction`` is what this machine's own loads taught (FitCalibration); only pass it when
    ``profile`` is the machine it was measured on.
    """
    m = _machine(profile)
    flash = kv_type != "f16"
    verdicts = [_judge(m, v, n_ctx, kv_type, flash, correction) for v in variants]
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
