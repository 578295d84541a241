"""Whether a load fits a machine: the one rule the recommender, the Load dialog and ``fit`` share.

A ``Machine`` is what a hardware profile offers a load: the GPUs this llama.cpp build can drive
(one backend; llama.cpp splits layers over devices of one backend), the GPU memory left after
llama.cpp's own margin, the RAM a load may take, and whether GPU and CPU share one pool (Apple
Silicon). ``Machine.fits`` is the single place that decides "fits" (``shortfall`` says why not);
``judge_load`` applies it to the options a user picked and names where the model would run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

from app.core.catalog.calibration import Correction
from app.core.catalog.estimator import (
    Device,
    GpuBackend,
    LoadPlan,
    MemoryEstimate,
    ModelFacts,
    estimate,
)
from app.core.hardware.profile import GpuDevice, HardwareProfile
from app.core.load_options import LoadOptions
from app.core.sizes import GIB, format_size

VerdictKind = Literal["gpu", "partial", "moe_offload", "cpu", "no_fit"]

GPU_MARGIN = 1 * GIB  # llama.cpp --fit's default free-memory target per device
RAM_RESERVE_SHARE = 0.15  # planning for a machine we cannot see: leave this much to the OS
# Share of theoretical bandwidth decoding reaches (llama-bench figures for each backend).
EFFICIENCY: dict[str, float] = {"cuda": 0.68, "rocm": 0.6, "vulkan": 0.55, "sycl": 0.5}
METAL_EFFICIENCY, METAL_ULTRA_EFFICIENCY = 0.58, 0.45

_GPU_BACKENDS: dict[str, GpuBackend] = {
    "cuda": "cuda", "metal": "metal", "vulkan": "vulkan", "rocm": "rocm", "sycl": "sycl"
}  # fmt: skip


@dataclass(frozen=True)
class Machine:
    """A hardware profile's budgets for one load, and the bandwidths its speed depends on."""

    gpus: tuple[GpuDevice, ...]
    backend: GpuBackend | None  # None: no GPU this build can drive, so CPU only
    gpu_budget: int  # over every usable GPU, margins taken off
    ram_budget: int
    unified: bool
    gpu_bandwidth: float | None
    gpu_efficiency: float
    ram_bandwidth: float | None
    unusable_note: str | None  # why a GPU that is present is left out

    @classmethod
    def of(cls, profile: HardwareProfile) -> Machine:
        gpus, note = _usable_gpus(profile)
        budget = 0
        for g in gpus:
            cap = g.usable_memory_bytes or g.memory_total_bytes
            if profile.source == "detected" and g.memory_free_bytes is not None:
                cap = min(cap, g.memory_free_bytes)
            budget += max(cap - GPU_MARGIN, 0)
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
        return cls(
            gpus=gpus,
            backend=_GPU_BACKENDS.get(gpus[0].backend or "") if gpus else None,
            gpu_budget=budget,
            ram_budget=ram,
            unified=any(g.unified_memory for g in gpus),
            gpu_bandwidth=min(bandwidths) if bandwidths and len(bandwidths) == len(gpus) else None,
            gpu_efficiency=efficiency,
            ram_bandwidth=profile.ram_bandwidth_gbs,
            unusable_note=note,
        )

    def gpu_need(self, est: MemoryEstimate) -> int:
        """GPU bytes over every device: each extra one holds its own context and compute buffer
        (the estimate counts one)."""
        extra = 0
        if len(self.gpus) > 1 and est.items:
            per_gpu = sum(
                i.bytes for i in est.items if i.device == "gpu" and "weights" not in i.label
            )
            per_gpu -= sum(
                i.bytes for i in est.items if i.label == "KV cache" and i.device == "gpu"
            )
            extra = per_gpu * (len(self.gpus) - 1)
        return est.gpu_bytes + extra

    def _exceeded(self, est: MemoryEstimate) -> Literal["gpu", "shared", "ram"] | None:
        gpu = self.gpu_need(est)
        if gpu > self.gpu_budget:
            return "gpu"
        if self.unified and gpu + est.ram_bytes > self.ram_budget:
            return "shared"  # one pool: the GPU's and the CPU's shares come out of the same RAM
        if est.ram_bytes > self.ram_budget:
            return "ram"
        return None

    def fits(self, est: MemoryEstimate) -> bool:
        return self._exceeded(est) is None

    def shortfall(self, est: MemoryEstimate) -> str | None:
        """Why ``est`` does not fit this machine, or None when it does."""
        exceeded = self._exceeded(est)
        if exceeded == "gpu":
            need, budget, memory = self.gpu_need(est), self.gpu_budget, "GPU memory"
        elif exceeded == "shared":
            need, budget = self.gpu_need(est) + est.ram_bytes, self.ram_budget
            memory = "memory shared by GPU and CPU"
        elif exceeded == "ram":
            need, budget, memory = est.ram_bytes, self.ram_budget, "RAM"
        else:
            return None
        return f"needs {format_size(need)} of {memory}; {format_size(budget)} is usable"

    def room(self, est: MemoryEstimate) -> str:
        """The budgets a fitting load was judged against."""
        ram = f"{format_size(self.ram_budget)} of RAM usable"
        if not est.gpu_bytes:
            return ram
        if self.unified:
            return f"{format_size(self.ram_budget)} of memory shared by GPU and CPU usable"
        return f"{format_size(self.gpu_budget)} of GPU memory and {ram}"


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


def placement(facts: ModelFacts, est: MemoryEstimate) -> tuple[VerdictKind, str]:
    """Where a load that fits runs, as a verdict kind and its label."""
    n = facts.n_layers
    moe = est.plan.moe_experts_on_cpu_layers if facts.is_moe else 0
    if est.gpu_layers == 0:
        return "cpu", "CPU only"
    if est.gpu_layers < n or not est.output_on_gpu:
        output = "" if est.gpu_layers < n else ", output layer on the CPU"
        return "partial", f"partial offload: {est.gpu_layers}/{n} layers on GPU{output}"
    if moe:
        return "moe_offload", f"MoE: experts of {min(moe, n)}/{n} layers in RAM"
    return "gpu", "fits on GPU"


@dataclass(frozen=True)
class MemoryLine:
    label: str
    device: Device
    bytes: int  # the learned correction applied


@dataclass(frozen=True)
class LoadFit:
    """One load's verdict on one machine: what the Load dialog shows beside the choices."""

    backend: GpuBackend | None  # the GPU backend the load uses; None runs it on the CPU
    estimate: MemoryEstimate
    kind: VerdictKind
    label: str  # "fits on GPU", "partial offload: 12/24 layers on GPU", "does not fit"
    reason: str  # the budgets it fits in, or what it needs beyond them

    @property
    def fits(self) -> bool:
        return self.kind != "no_fit"

    @property
    def lines(self) -> tuple[MemoryLine, ...]:
        est = self.estimate
        return tuple(
            MemoryLine(i.label, i.device, round(i.bytes * est.correction)) for i in est.items
        )


def judge_load(
    machine: Machine,
    facts: ModelFacts,
    options: LoadOptions,
    correction: Correction | None = None,
) -> LoadFit:
    """The verdict on loading ``facts`` with ``options`` here (raises ConfigError on options
    llama.cpp would refuse, such as a quantized KV cache without flash attention)."""
    backend = machine.backend if options.n_gpu_layers else None
    est = estimate_with(correction)(facts, LoadPlan.from_options(options, backend))
    short = machine.shortfall(est)
    if short is not None:
        return LoadFit(backend, est, "no_fit", "does not fit", short)
    kind, label = placement(facts, est)
    return LoadFit(backend, est, kind, label, machine.room(est))


def estimate_with(correction: Correction | None) -> partial[MemoryEstimate]:
    """The estimator carrying what this machine's own loads taught (none for other machines)."""
    if correction is None:
        return partial(estimate)
    return partial(estimate, correction=correction.factor, correction_basis=correction.basis)
