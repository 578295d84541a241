"""Memory decides what stays loaded: the estimate of a load against the memory left.

The budget is the RAM available now (or a fixed total the user set, minus what loaded models
take), plus what unloading idle models would free, minus the user's margin; with layers
offloaded, the GPU memory free on the devices this build drives is checked the same way. A
loaded model counts with the resident memory measured over its load; one not yet measured
counts with its estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import psutil

from app.core.catalog.calibration import Correction
from app.core.catalog.estimator import LoadPlan, ModelFacts
from app.core.catalog.fit import Machine, estimate_with
from app.core.catalog.gguf_header import read_local_model
from app.core.errors import AppError, InsufficientMemory, PoolFull
from app.core.load_options import LoadOptions
from app.core.sizes import MIB


@dataclass(frozen=True)
class MemoryNeed:
    """What one load takes, per kind of memory (GPU only when layers are offloaded)."""

    ram_bytes: int
    gpu_bytes: int = 0
    basis: str = "estimated"


@dataclass(frozen=True)
class Resident:
    """A loaded model as eviction sees it."""

    name: str
    ram_bytes: int
    gpu_bytes: int
    idle: bool  # neither busy nor pinned nor being loaded


@dataclass(frozen=True)
class Room:
    ram_bytes: int
    gpu_bytes: int | None  # None: no GPU this build drives


def estimate_need(
    options: LoadOptions, machine: Machine | None, correction: Correction | None
) -> MemoryNeed:
    """The fit estimate of ``options`` (every sequence slot's KV cache included), with this
    machine's measured correction. A header the estimator cannot read counts as the file size:
    the engine's own reader then refuses the file with the real reason."""
    backend = machine.backend if machine is not None and options.n_gpu_layers else None
    try:
        facts = ModelFacts.from_header(read_local_model(options.model_path))
        plan = replace(LoadPlan.from_options(options, backend), parallel=options.parallel)
        est = estimate_with(correction)(facts, plan)
    except AppError:
        size = options.model_path.stat().st_size if options.model_path.exists() else 0
        return MemoryNeed(ram_bytes=size, basis="file size")
    gpu = machine.gpu_need(est) if machine is not None and est.gpu_bytes else 0
    ram = est.ram_bytes
    if options.workers:
        # The workers hold their share of the weights; the split itself is checked against
        # every machine's free memory before any weights move. Here the local share is the
        # user's split or, split by free memory, nothing counted beyond the KV cache and buffers.
        split = options.tensor_split
        local_share = split[0] / sum(split) if split and sum(split) > 0 else 0.0
        weights = options.model_path.stat().st_size
        ram = max(ram - int(weights * (1 - local_share)), 0)
    return MemoryNeed(ram_bytes=ram, gpu_bytes=gpu, basis=est.basis)


class MemoryBudget:
    """The memory a new load may use now, before anything is evicted."""

    def __init__(
        self,
        margin_bytes: int,
        total_bytes: int | None = None,
        machine: Callable[[], Machine | None] = lambda: None,
        ram_available: Callable[[], int] = lambda: psutil.virtual_memory().available,
    ) -> None:
        # ``total_bytes`` caps what all loaded models may take together (a setting, and how
        # tests on tiny models force eviction); None: the RAM the OS reports available.
        self.margin_bytes = margin_bytes
        self.total_bytes = total_bytes
        self._machine = machine
        self._ram_available = ram_available

    def machine(self) -> Machine | None:
        """The GPUs this build can drive and their free memory, asked only for offloaded loads."""
        return self._machine()

    def room(self, residents: Sequence[Resident], machine: Machine | None) -> Room:
        if self.total_bytes is not None:
            ram = self.total_bytes - sum(r.ram_bytes for r in residents)
        else:
            ram = self._ram_available()  # what loaded models hold is already taken out
        gpu = machine.gpu_budget if machine is not None and machine.backend else None
        return Room(ram_bytes=ram - self.margin_bytes, gpu_bytes=gpu)


def choose_evictions(
    model: str,
    need: MemoryNeed,
    room: Room,
    residents: Sequence[Resident],
    max_loaded: int | None,
) -> list[str]:
    """The idle models to unload, least recently used first, so ``need`` fits ``room``.

    ``residents`` are in least-recently-used order. Raises ``InsufficientMemory`` (or
    ``PoolFull`` for the count limit) without choosing anything when unloading every idle model
    would not be enough, so a load that cannot fit costs nobody their model.
    """
    idle = [r for r in residents if r.idle]
    chosen: list[Resident] = []
    if max_loaded is not None:
        excess = len(residents) + 1 - max_loaded
        if excess > len(idle):
            raise PoolFull(len(residents))
        chosen.extend(idle[: max(excess, 0)])

    def freed(kind: str) -> int:
        return sum(getattr(r, kind) for r in chosen)

    def short() -> bool:
        ram_short = need.ram_bytes > room.ram_bytes + freed("ram_bytes")
        gpu_short = (
            need.gpu_bytes > 0
            and room.gpu_bytes is not None
            and need.gpu_bytes > room.gpu_bytes + freed("gpu_bytes")
        )
        return ram_short or gpu_short

    for candidate in idle[len(chosen) :]:
        if not short():
            break
        chosen.append(candidate)
    if short():
        every = sum(r.ram_bytes for r in idle)
        if need.gpu_bytes and room.gpu_bytes is not None:
            gpu_free = room.gpu_bytes + sum(r.gpu_bytes for r in idle)
            if need.gpu_bytes > gpu_free:
                raise InsufficientMemory(model, need.gpu_bytes, gpu_free, "GPU memory")
        raise InsufficientMemory(model, need.ram_bytes, room.ram_bytes + every, "RAM")
    return [r.name for r in chosen]


def margin_bytes(margin_mb: int) -> int:
    return margin_mb * MIB
