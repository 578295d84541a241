"""Loading a model with workers: probe each one, plan the split, then load in a child process.

Every refusal (a worker unreachable, of another protocol version, too small; an IPv6 address
ggml cannot take; a build without RPC) comes before any weights move.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import psutil

from app.core.catalog.gguf_header import read_local_model
from app.core.cluster.backend_process import Deadlines, ProcessBackend
from app.core.cluster.ggml_rpc import RPC_LIBRARY_MISSING, local_devices, rpc_available
from app.core.cluster.split import LayerSplit, plan_split
from app.core.cluster.worker import (
    DEFAULT_PROBE_TIMEOUT_S,
    WorkerAddress,
    WorkerMemory,
    parse_workers,
    probe_worker,
)
from app.core.engine.backend import LlamaBackend
from app.core.engine.engine import Backend, BackendFactory
from app.core.errors import ModelLoadError
from app.core.load_options import LoadOptions
from app.core.sizes import format_size

log = logging.getLogger(__name__)


def probe_workers(
    workers: Sequence[str], timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
) -> list[WorkerMemory]:
    """Each worker's memory, in order; the first that fails raises its ``WorkerError``."""
    addresses = parse_workers(" ".join(workers))
    for address in addresses:
        address.endpoint  # noqa: B018 - refuses what ggml cannot connect to, before any probe
    return [probe_worker(address, timeout_s) for address in addresses]


def plan_for(options: LoadOptions, memories: Sequence[WorkerMemory]) -> LayerSplit:
    """The split of ``options.model_path`` across this machine and ``memories``' workers."""
    header = read_local_model(options.model_path)
    model_bytes = header.file_size or options.model_path.stat().st_size
    local_gpus = 0
    local_free = psutil.virtual_memory().available
    if options.n_gpu_layers != 0:
        gpus = [d for d in local_devices() if d.kind in ("gpu", "igpu")]
        if gpus:
            local_gpus = len(gpus)
            local_free = sum(d.free_bytes for d in gpus)
    return plan_split(
        model_bytes=model_bytes,
        n_layers=header.block_count,
        local_free_bytes=local_free,
        workers=memories,
        user_split=options.tensor_split,
        local_gpus=local_gpus,
    )


def open_split_backend(
    options: LoadOptions,
    deadlines: Deadlines | None = None,
    probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S,
) -> ProcessBackend:
    if not rpc_available():
        raise ModelLoadError(RPC_LIBRARY_MISSING)
    memories = probe_workers(options.workers, probe_timeout_s)
    split = plan_for(options, memories)
    log.info(
        "splitting %s: %s",
        options.model_path.name,
        ", ".join(
            f"{name} {share:.0%}"
            for name, share in zip(
                ["this machine", *(str(m.address) for m in memories)], split.shares, strict=True
            )
        ),
    )
    for memory in memories:
        log.info("worker %s: %s free", memory.address, format_size(memory.free_bytes))
    addresses: list[WorkerAddress] = [memory.address for memory in memories]
    return ProcessBackend(options, addresses, split, deadlines or Deadlines())


def backend_factory(
    deadlines: Deadlines | None = None, probe_timeout_s: float = DEFAULT_PROBE_TIMEOUT_S
) -> BackendFactory:
    """The engine's loader: this process's llama.cpp, or a child process when workers share it."""

    def open_backend(options: LoadOptions) -> Backend:
        if not options.workers:
            return LlamaBackend(options)
        return open_split_backend(options, deadlines, probe_timeout_s)

    return open_backend
