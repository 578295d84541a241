"""How a model's layers are shared between this machine and its workers, decided before any
weights move.

llama.cpp places the first ``n_layer + 1 - n_gpu_layers`` blocks on the CPU and spreads the rest
(the output layer counted as one more block) over its devices in proportion to a tensor split.
A worker's devices come first in that device list, then this machine's GPUs. So with a CPU-only
machine here, this machine's share is "the first k blocks" and the workers split the rest; with
a GPU here, every block is offloaded and this machine's GPUs take their share in the split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.core.cluster.worker import WorkerMemory
from app.core.errors import ConfigError, WorkerTooSmall
from app.core.sizes import format_size


@dataclass(frozen=True)
class LayerSplit:
    shares: tuple[float, ...]  # per machine, this one first; they add up to 1
    n_gpu_layers: int  # llama.cpp's count of offloaded blocks (-1: all)
    device_split: tuple[float, ...]  # per llama.cpp device: workers' devices, then local GPUs
    local_layers: int  # blocks kept on this machine's CPU


def plan_split(
    *,
    model_bytes: int,
    n_layers: int,
    local_free_bytes: int,
    workers: Sequence[WorkerMemory],
    user_split: Sequence[float] | None = None,
    local_gpus: int = 0,
) -> LayerSplit:
    """The split by each machine's free memory, or by ``user_split`` (one weight per machine,
    this one first). ``WorkerTooSmall`` when a worker cannot hold its part, or one block, or the
    machines together cannot hold the model."""
    if not workers:
        raise ConfigError("a split needs at least one worker")
    if n_layers <= 0:
        raise ConfigError("the model declares no layers to split")
    frees = [max(local_free_bytes, 0), *(worker.free_bytes for worker in workers)]
    if user_split is not None:
        if len(user_split) != len(frees):
            raise ConfigError(
                f"the tensor split has {len(user_split)} weights for {len(frees)} machines "
                "(this one first, then each worker)"
            )
        if any(w < 0 for w in user_split) or sum(user_split) <= 0:
            raise ConfigError("tensor split weights must be non-negative and not all zero")
        weights = list(user_split)
    else:
        weights = [float(free) for free in frees]
    total_free = sum(frees)
    if total_free < model_bytes:
        raise WorkerTooSmall(
            f"this machine and its workers have {format_size(total_free)} free together; "
            f"the model needs about {format_size(model_bytes)}: add a worker or pick a smaller "
            "quantization"
        )
    block_bytes = model_bytes // (n_layers + 1)
    total_weight = sum(weights)
    shares = tuple(weight / total_weight for weight in weights)
    for worker, share in zip(workers, shares[1:], strict=True):
        needed = max(int(share * model_bytes), block_bytes)
        if worker.free_bytes < needed:
            raise WorkerTooSmall(
                f"worker {worker.address} has {format_size(worker.free_bytes)} free; its part "
                f"of this model needs about {format_size(needed)}"
            )
    device_split: list[float] = []
    for worker, share in zip(workers, shares[1:], strict=True):
        device_split += [share / worker.devices] * worker.devices
    if local_gpus > 0:
        device_split += [shares[0] / local_gpus] * local_gpus
        return LayerSplit(shares, -1, tuple(device_split), 0)
    local_layers = min(round(shares[0] * (n_layers + 1)), n_layers)
    return LayerSplit(shares, n_layers + 1 - local_layers, tuple(device_split), local_layers)
