"""How much GPU memory and RAM a model needs at a context size, split by device.

Formulas: docs/memory-fit.md (KV per layer, sliding window, MLA, KV
quantisation, compute buffers) and what llama-cpp-python 0.3.36 really allocates, read from its
own log on the starter model here (``bench/fit_accuracy.py`` re-measures):

- weights are memory-mapped; on CPU they become resident when loaded, and on x86 (AVX2) and
  ARM the Q4_0/Q4_K/IQ4_NL matrices get a second, repacked copy (``CPU_REPACK`` buffer);
- the KV cache is allocated and cleared at load, one row per cell per layer; llama-cpp-python
  keeps a full-size cache for sliding-window layers (``swa_full``), so they cost as much as
  global ones; cells are padded to 256;
- the compute buffer is reserved for the worst graph (logits of a full micro-batch, or the
  K·Q matrix at full context without flash attention). On a GPU it is allocated; in RAM its
  pages only count once touched, and generation computes logits for one row only, so the
  logits part stays virtual;
- a fixed runtime part (vocabulary tables, graph metadata, thread pools) calibrated on the
  starter model: about 20 MiB plus ~104 bytes per vocabulary token, plus ~96 bytes per
  context cell of llama-cpp-python's own per-context arrays.

Every figure carries a ``basis`` so the UI can say where it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from app.core.catalog.gguf_header import GgufHeader
from app.core.errors import ConfigError
from app.core.load_options import KvCacheType, LoadOptions
from app.core.sizes import MIB

Device = Literal["gpu", "ram"]
GpuBackend = Literal["cuda", "metal", "vulkan", "rocm", "sycl"]

KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
KV_CELL_PAD = 256
# GPU context/driver memory that never shows up as a llama.cpp buffer (Ollama's per-device figure
# for CUDA and ROCm; docs/memory-fit.md).
BACKEND_OVERHEAD: dict[str, int] = {
    "cuda": 457 * MIB,
    "rocm": 457 * MIB,
    "vulkan": 457 * MIB,
    "sycl": 457 * MIB,
    "metal": 0,  # unified: Metal's own allocations are part of the working set below
}
RUNTIME_BASE = 20 * MIB
RUNTIME_PER_VOCAB_TOKEN = 104
RUNTIME_PER_CTX_CELL = 96
REPACKED_TYPES = frozenset({"Q4_0", "Q4_K", "IQ4_NL"})

HEADER_BASIS = "estimated from the GGUF header"


@dataclass(frozen=True)
class ModelFacts:
    """What the estimator needs about a model, from a GGUF header or from a catalog entry."""

    architecture: str
    n_layers: int
    n_embd: int
    n_head: int
    head_count_kv: tuple[int, ...]  # per layer
    key_length: int
    value_length: int
    swa_layers: tuple[bool, ...]
    sliding_window: int | None
    vocab_size: int
    layer_bytes: tuple[int, ...]  # non-expert weights of blk.N
    layer_expert_bytes: tuple[int, ...]  # routed-expert weights of blk.N
    input_bytes: int  # token_embd and other tensors read before the first block
    output_bytes: int  # output + output_norm
    total_params: int
    active_params: int
    n_expert: int = 0
    n_expert_used: int = 0
    kv_lora_rank: int | None = None
    layer_repack_bytes: tuple[int, ...] = ()  # per layer, weights the CPU repacks
    output_repack_bytes: int = 0
    basis: str = HEADER_BASIS

    # No output.weight: the output reuses token_embd; llama.cpp copies it to the output layer's
    # device when that is a GPU (on the CPU it reads the same mapped bytes).
    tied_output_bytes: int = 0

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 0 and any(self.layer_expert_bytes)

    @classmethod
    def from_header(cls, header: GgufHeader) -> ModelFacts:
        n = header.block_count
        layer = [0] * n
        experts = [0] * n
        repack = [0] * n
        input_bytes = output_bytes = output_repack = 0
        has_output = any(t.name == "output.weight" for t in header.tensors)
        embd_bytes = 0
        for t in header.tensors:
            il = t.layer
            if il is not None and 0 <= il < n:
                if t.is_expert:
                    experts[il] += t.nbytes
                else:
                    layer[il] += t.nbytes
                    if t.ggml_type in REPACKED_TYPES and len(t.shape) == 2:
                        repack[il] += t.nbytes
            elif t.name.startswith(("output", "result")):
                output_bytes += t.nbytes
                if t.ggml_type in REPACKED_TYPES and t.name == "output.weight":
                    output_repack += t.nbytes
            else:
                input_bytes += t.nbytes
                if t.name == "token_embd.weight":
                    embd_bytes = t.nbytes
        heads = max(header.head_count, default=0)
        total = header.parameter_count
        active = _active_params(header, total)
        return cls(
            architecture=header.architecture,
            n_layers=n,
            n_embd=header.embedding_length or 0,
            n_head=heads,
            head_count_kv=header.head_count_kv,
            key_length=header.key_length or 0,
            value_length=header.value_length or 0,
            swa_layers=header.swa_layers,
            sliding_window=header.sliding_window,
            vocab_size=header.vocab_size or 0,
            layer_bytes=tuple(layer),
            layer_expert_bytes=tuple(experts),
            input_bytes=input_bytes,
            output_bytes=output_bytes,
            tied_output_bytes=0 if has_output else embd_bytes,
            total_params=total,
            active_params=active,
            n_expert=header.expert_count,
            n_expert_used=header.expert_used_count,
            kv_lora_rank=header.kv_lora_rank,
            layer_repack_bytes=tuple(repack),
            output_repack_bytes=output_repack,
        )


def _active_params(header: GgufHeader, total: int) -> int:
    if not header.expert_count or not header.expert_used_count:
        return total
    expert = sum(t.n_elements for t in header.tensors if t.is_expert)
    return total - expert + expert * header.expert_used_count // header.expert_count


@dataclass(frozen=True)
class LoadPlan:
    """How the model would be loaded (the knobs llama.cpp exposes)."""

    n_ctx: int
    kv_cache_type: KvCacheType = "f16"
    flash_attn: bool = False
    n_gpu_layers: int = 0  # -1: every block and the output layer (llama.cpp's "all")
    moe_experts_on_cpu_layers: int = 0  # the first N blocks keep their routed experts in RAM
    gpu_backend: GpuBackend | None = None
    n_ubatch: int = 512
    swa_full: bool = True  # llama-cpp-python's default
    cpu_repack: bool = True  # x86 AVX2 / ARM builds repack Q4 weights that stay on the CPU
    # Sequence slots; the engine's one KV cache holds parallel × n_ctx cells.
    parallel: int = 1

    @classmethod
    def from_options(cls, options: LoadOptions, gpu_backend: GpuBackend | None) -> LoadPlan:
        """The estimator's view of a load; layers go to ``gpu_backend`` only when it is set."""
        return cls(
            n_ctx=options.n_ctx,
            kv_cache_type=options.kv_cache_type,
            flash_attn=options.flash_attn,
            n_gpu_layers=options.n_gpu_layers if gpu_backend else 0,
            moe_experts_on_cpu_layers=options.moe_experts_on_cpu_layers,
            gpu_backend=gpu_backend,
        )


@dataclass(frozen=True)
class MemoryItem:
    label: str
    device: Device
    bytes: int
    basis: str


@dataclass(frozen=True)
class MemoryEstimate:
    plan: LoadPlan
    items: tuple[MemoryItem, ...]
    gpu_layers: int  # blocks on the GPU
    output_on_gpu: bool
    correction: float = 1.0
    correction_basis: str | None = None
    notes: tuple[str, ...] = field(default=())

    def _sum(self, device: Device, skip: frozenset[str] = frozenset()) -> int:
        raw = sum(i.bytes for i in self.items if i.device == device and i.label not in skip)
        return round(raw * self.correction)

    @property
    def gpu_bytes(self) -> int:
        return self._sum("gpu")

    @property
    def ram_bytes(self) -> int:
        """RAM while working: resident after load plus the compute pages a full batch touches."""
        return self._sum("ram")

    @property
    def ram_after_load_bytes(self) -> int:
        """Growth of resident memory when the load returns (what bench/fit_accuracy measures)."""
        return self._sum("ram", frozenset({COMPUTE_LABEL}))

    @property
    def basis(self) -> str:
        if self.correction_basis:
            return f"{HEADER_BASIS}, corrected ×{self.correction:.2f} ({self.correction_basis})"
        bases = {i.basis for i in self.items}
        return bases.pop() if len(bases) == 1 else "estimated"


COMPUTE_LABEL = "compute buffer"


def kv_cells(plan: LoadPlan, swa: bool, window: int | None) -> int:
    n_ctx = _pad(plan.n_ctx * max(plan.parallel, 1), KV_CELL_PAD)
    if swa and window and not plan.swa_full:
        return min(n_ctx, _pad(window + plan.n_ubatch, KV_CELL_PAD))
    return n_ctx


def kv_layer_bytes(facts: ModelFacts, plan: LoadPlan) -> tuple[int, ...]:
    """KV cache bytes per layer (0 for recurrent layers, which have no KV)."""
    per_elem = KV_BYTES_PER_ELEMENT[plan.kv_cache_type]
    result: list[int] = []
    for il in range(facts.n_layers):
        heads = facts.head_count_kv[il] if il < len(facts.head_count_kv) else 0
        swa = facts.swa_layers[il] if il < len(facts.swa_layers) else False
        cells = kv_cells(plan, swa, facts.sliding_window)
        if facts.kv_lora_rank:
            # MLA: one compressed K row per token, no V cache (llama.cpp PR #19067).
            row = facts.key_length * max(heads, 1)
        else:
            row = heads * (facts.key_length + facts.value_length)
        result.append(round(cells * row * per_elem))
    return tuple(result)


def compute_buffer_bytes(facts: ModelFacts, plan: LoadPlan) -> tuple[int, int]:
    """(reserved, touched while working) bytes of the compute buffer of one device.

    Reserved = max(logits of a micro-batch, attention at full context) plus activations;
    touched leaves out the logits rows generation never computes.
    """
    ub = min(plan.n_ubatch, plan.n_ctx)
    n_ctx = _pad(plan.n_ctx * max(plan.parallel, 1), KV_CELL_PAD)  # every slot's cells
    width = max(facts.n_embd, facts.n_head * facts.key_length)
    act = ub * width * 4
    if facts.n_expert:
        act += ub * facts.n_expert * 4
    logits = facts.vocab_size * ub * 4
    # Without flash attention the K·Q scores, softmax and mask live at once (n_head + 2 rows of
    # n_ctx × ub floats, fitted on the starter model's 65536-cell graph).
    attn = n_ctx * ub * 2 if plan.flash_attn else n_ctx * ub * 4 * (facts.n_head + 2)
    reserved = max(logits + 2 * act, attn + 8 * act)
    touched = attn + 8 * act
    return reserved, touched


def runtime_bytes(facts: ModelFacts, plan: LoadPlan) -> int:
    """The main process's fixed part: vocabulary tables, graph metadata, per-context arrays."""
    return (
        RUNTIME_BASE
        + RUNTIME_PER_VOCAB_TOKEN * facts.vocab_size
        + RUNTIME_PER_CTX_CELL * _pad(plan.n_ctx, KV_CELL_PAD)
        + facts.vocab_size * 4  # the output (logits) buffer for one token
    )


def estimate(
    facts: ModelFacts, plan: LoadPlan, correction: float = 1.0, correction_basis: str | None = None
) -> MemoryEstimate:
    """Memory per device for ``facts`` loaded as ``plan``."""
    if plan.n_ctx < 1:
        raise ConfigError("the context size must be at least 1 token")
    if plan.kv_cache_type != "f16" and not plan.flash_attn:
        raise ConfigError(
            "a quantized KV cache needs flash attention (llama.cpp refuses otherwise)"
        )
    if not 0.25 <= correction <= 4.0:
        raise ConfigError(f"a correction factor of {correction} is not plausible")
    n = facts.n_layers
    gpu = plan.gpu_backend is not None and plan.n_gpu_layers != 0
    n_gpu = n if plan.n_gpu_layers < 0 or plan.n_gpu_layers > n else max(plan.n_gpu_layers, 0)
    n_gpu = n_gpu if gpu else 0
    output_on_gpu = gpu and (plan.n_gpu_layers < 0 or plan.n_gpu_layers > n)
    first_gpu_layer = n - n_gpu  # llama.cpp offloads the last blocks
    kv = kv_layer_bytes(facts, plan)
    basis = facts.basis

    dev: dict[str, dict[Device, int]] = {}

    def put(label: str, device: Device, amount: int) -> None:
        if amount:
            dev.setdefault(label, {}).setdefault(device, 0)
            dev[label][device] += amount

    put("weights", "ram", facts.input_bytes)
    for il in range(n):
        on_gpu = il >= first_gpu_layer
        experts_in_ram = il < plan.moe_experts_on_cpu_layers
        put("weights", "gpu" if on_gpu else "ram", facts.layer_bytes[il])
        put(
            "expert weights",
            "gpu" if on_gpu and not experts_in_ram else "ram",
            facts.layer_expert_bytes[il],
        )
        put("KV cache", "gpu" if on_gpu else "ram", kv[il])
        if not on_gpu and plan.cpu_repack and facts.layer_repack_bytes:
            put("repacked CPU weights", "ram", facts.layer_repack_bytes[il])
    put("weights", "gpu" if output_on_gpu else "ram", facts.output_bytes)
    if output_on_gpu:
        put("weights", "gpu", facts.tied_output_bytes)
    if not output_on_gpu and plan.cpu_repack:
        put("repacked CPU weights", "ram", facts.output_repack_bytes)

    reserved, touched = compute_buffer_bytes(facts, plan)
    if gpu and n_gpu:
        put(COMPUTE_LABEL, "gpu", reserved)
        # The host keeps a smaller buffer for what runs there (embedding lookup, CPU layers).
        host = facts.vocab_size * min(plan.n_ubatch, plan.n_ctx) * 4 if not output_on_gpu else 0
        put(COMPUTE_LABEL, "ram", min(touched, host) if host else 0)
        put("backend overhead", "gpu", BACKEND_OVERHEAD.get(plan.gpu_backend or "", 0))
    else:
        put(COMPUTE_LABEL, "ram", touched)
    put("runtime (vocab, buffers)", "ram", runtime_bytes(facts, plan))

    items = tuple(
        MemoryItem(label, device, amount, basis)
        for label, per_device in dev.items()
        for device, amount in per_device.items()
    )
    notes: list[str] = []
    if plan.swa_full and any(facts.swa_layers):
        notes.append("sliding-window layers keep a full-size cache (llama-cpp-python default)")
    return MemoryEstimate(
        plan, items, n_gpu, output_on_gpu, correction, correction_basis, tuple(notes)
    )


def layers_that_fit(facts: ModelFacts, plan: LoadPlan, gpu_budget: int) -> int:
    """The most blocks (0..n_layers; -1 = all plus output) whose estimate fits ``gpu_budget``."""
    full = estimate(facts, LoadPlan(**{**plan.__dict__, "n_gpu_layers": -1}))
    if full.gpu_bytes <= gpu_budget:
        return -1
    lo, hi = 0, facts.n_layers
    while lo < hi:  # GPU bytes grow with the layer count: binary search
        mid = (lo + hi + 1) // 2
        trial = estimate(facts, LoadPlan(**{**plan.__dict__, "n_gpu_layers": mid}))
        if trial.gpu_bytes <= gpu_budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


# Sequence slots chosen when the user sets none: enough for chat, an agent and autocomplete at
# once; beyond 8 a CPU only shares the same cores among more streams.
AUTO_PARALLEL_MIN = 2
AUTO_PARALLEL_MAX = 8


def parallel_that_fits(facts: ModelFacts, plan: LoadPlan, budget_bytes: int) -> int:
    """The most sequence slots (2..8) whose RAM estimate fits ``budget_bytes`` (a CPU load)."""
    best = AUTO_PARALLEL_MIN
    for n in range(AUTO_PARALLEL_MIN, AUTO_PARALLEL_MAX + 1):
        trial = estimate(facts, LoadPlan(**{**plan.__dict__, "parallel": n}))
        if trial.ram_bytes > budget_bytes:
            break
        best = n
    return best


def parallel_cost_bytes(facts: ModelFacts, plan: LoadPlan) -> int:
    """What ``plan.parallel`` slots add over one (KV cache and attention scratch), all devices."""
    one = estimate(facts, LoadPlan(**{**plan.__dict__, "parallel": 1}))
    many = estimate(facts, plan)
    return many.ram_bytes + many.gpu_bytes - one.ram_bytes - one.gpu_bytes


def _pad(value: int, to: int) -> int:
    return -(-value // to) * to
