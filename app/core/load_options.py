"""How a model is loaded: the one vocabulary the Load dialog, ``serve``, ``fit`` and the engine share.

It lives beside the engine and the fit estimator rather than in either, because the estimator
(catalog) must judge a load without importing the engine that performs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

KvCacheType = Literal["f16", "q8_0", "q4_0"]
# Every KV cache type llama.cpp accepts here; a quantized one needs flash attention.
KV_CACHE_TYPES: tuple[KvCacheType, ...] = get_args(KvCacheType)
# Sequence slots when nothing else decides (llama-server's -np auto): chat, an agent and
# autocomplete at once.
DEFAULT_PARALLEL = 4


@dataclass(frozen=True)
class LoadOptions:
    model_path: Path
    n_ctx: int = 4096
    n_gpu_layers: int = 0  # -1 offloads every layer
    flash_attn: bool = False
    kv_cache_type: KvCacheType = "f16"
    n_threads: int | None = None  # None: llama.cpp's default for this CPU
    use_mmap: bool = True
    use_mlock: bool = False
    # MoE: keep the experts of the first N layers in RAM (llama.cpp's --n-cpu-moe).
    moe_experts_on_cpu_layers: int = 0
    # Extra (regex, buffer type) overrides, as llama.cpp's --override-tensor.
    tensor_overrides: tuple[tuple[str, str], ...] = ()
    model_id: str | None = None  # the name served to clients; the file stem when None
    seed: int | None = None
    # Sequence slots decoded together (llama.cpp's --parallel); each holds n_ctx tokens.
    parallel: int = DEFAULT_PARALLEL
    # Machines running `homefire worker` ("host:port") that hold part of the model's layers.
    workers: tuple[str, ...] = ()
    # How the layers are shared: one weight per machine, this one first, then each worker in
    # order (as llama.cpp's --tensor-split); None: in proportion to each one's free memory.
    tensor_split: tuple[float, ...] | None = None
