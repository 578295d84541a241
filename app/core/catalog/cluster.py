"""Planning a load across several machines: this one plus llama.cpp RPC workers.

A ``Cluster`` is the main machine (this one, or a planning profile) and its workers, each with
the memory its device offers a load and the bandwidth its decoding reads at. ``plan_cluster``
splits a model's layers the way llama.cpp does by default and judges each member's share; the
caller gathers the members' numbers (hardware profiles, or what live workers report), so this
module never talks to a worker or to the engine.

How a load with workers places layers (llama.cpp's model loader, driven as ``homefire serve
--worker`` drives it): RPC devices go to the front of llama.cpp's device list and this machine's
GPU last; offloaded layer ``il`` of ``k`` (the output layer counts as one more) goes to the first
device whose cumulative share of free memory exceeds ``il / k``. With a GPU here every layer is
offloaded, so the workers take the first layers and this machine the last ones and the output.
With no GPU here, this machine's CPU keeps the first blocks, its share of free memory of
``n_layers + 1``, and the workers split the rest, the output layer on the last worker. Each
device then holds the KV cache of its layers and its own compute buffer; the main process also
keeps the token embeddings and its runtime in RAM.

Speed (docs/memory-fit.md, "Several machines"): a token visits the members one after another, so
its time is the sum of each member's share of weight bytes over its bandwidth, plus the network:
each worker receives the hidden state and the graph of its layers and sends the result back.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Literal

from app.core.catalog.estimator import (
    BACKEND_OVERHEAD,
    GpuBackend,
    LoadPlan,
    ModelFacts,
    compute_buffer_bytes,
    kv_layer_bytes,
    runtime_bytes,
)
from app.core.catalog.fit import GPU_MARGIN, Machine
from app.core.catalog.quants import quant_quality
from app.core.catalog.recommend import CPU_EFFICIENCY, Variant, layer_read_bytes
from app.core.errors import ConfigError
from app.core.hardware.profile import HardwareProfile
from app.core.load_options import KvCacheType
from app.core.sizes import format_size

ClusterKind = Literal["fits", "tight", "no_fit"]
MemberRole = Literal["here", "worker"]

DEFAULT_LINK_GBPS = 10.0  # 10 GbE, what a desk of workstations is usually wired with
MAX_MEMBERS = 16  # llama.cpp's device list holds 16 devices (GGML_SCHED_MAX_BACKENDS)
TIGHT_HEADROOM = 0.05  # a share leaving less than this of a member's memory free is "tight"
# The hidden state crosses the link as f32, once to a worker and once back.
ACTIVATION_BYTES_PER_VALUE = 4
# ggml-rpc sends the compute graph with every token: one 296-byte record per tensor, about 50
# tensors (nodes and weights) per transformer block. Estimated from its wire format.
GRAPH_BYTES_PER_LAYER = 50 * 296
# Round trips a worker costs per token (set the input, compute the graph, read the output), each
# a LAN ping: 0.2 ms is typical of switched Ethernet. Both figures are estimates.
ROUND_TRIPS_PER_WORKER = 3
LAN_ROUND_TRIP_S = 0.0002


@dataclass(frozen=True)
class ClusterMember:
    """One machine's device as a load sees it: memory for its share and its decode bandwidth."""

    name: str  # "this machine", a profile's name, or a worker's "host:port"
    role: MemberRole
    memory_bytes: int  # what its device may hold for the model (margins taken off)
    memory_basis: str
    backend: GpuBackend | None  # None: the CPU runs its layers
    bandwidth_gbs: float | None  # GB/s (10^9 bytes); None: unknown, so no speed estimate
    efficiency: float  # share of that bandwidth decoding reaches
    bandwidth_basis: str
    # The main machine's RAM for what never leaves it (token embeddings, runtime); when its
    # device is the CPU or shares RAM with the GPU, that comes out of memory_bytes instead.
    ram_bytes: int = 0
    shares_ram: bool = True

    @classmethod
    def of_profile(cls, profile: HardwareProfile, role: MemberRole) -> ClusterMember:
        """A machine described by a hardware profile (detected here, or planned for)."""
        m = Machine.of(profile)
        name = profile.name
        if m.backend:
            gpu = m.gpus[0]
            return cls(
                name=name,
                role=role,
                memory_bytes=m.gpu_budget,
                memory_basis=_memory_basis(profile, "GPU memory"),
                backend=m.backend,
                bandwidth_gbs=m.gpu_bandwidth,
                efficiency=m.gpu_efficiency,
                bandwidth_basis=gpu.memory_bandwidth_source or "unknown",
                ram_bytes=m.ram_budget,
                shares_ram=m.unified,
            )
        return cls(
            name=name,
            role=role,
            memory_bytes=m.ram_budget,
            memory_basis=_memory_basis(profile, "RAM"),
            backend=None,
            bandwidth_gbs=m.ram_bandwidth,
            efficiency=CPU_EFFICIENCY,
            bandwidth_basis=profile.ram_bandwidth_source or "unknown",
            ram_bytes=m.ram_budget,
        )

    @classmethod
    def reported(cls, address: str, free_bytes: int, description: str) -> ClusterMember:
        """A live worker, from the free memory its RPC server reports for its devices. It says
        nothing of its bandwidth or its kind of device, so it is planned as memory only."""
        return cls(
            name=address,
            role="worker",
            memory_bytes=max(free_bytes - GPU_MARGIN, 0),
            memory_basis=f"reported free by the worker ({description}), less a 1 GiB margin",
            backend=None,
            bandwidth_gbs=None,
            efficiency=CPU_EFFICIENCY,
            bandwidth_basis="unknown: a worker reports its memory, not its bandwidth",
        )


def _memory_basis(profile: HardwareProfile, what: str) -> str:
    if profile.source == "detected":
        return f"{what} free now, less llama.cpp's margin"
    return f"{what} of the planning profile, less the margins for the OS and llama.cpp"


@dataclass(frozen=True)
class Cluster:
    """The main machine first (it runs the program, the embeddings and the output), then workers."""

    here: ClusterMember
    workers: tuple[ClusterMember, ...]
    link_gbps: float = DEFAULT_LINK_GBPS

    def __post_init__(self) -> None:
        if not self.link_gbps > 0:
            raise ConfigError("the link bandwidth must be a positive number of Gbit/s")
        if len(self.workers) + 1 > MAX_MEMBERS:
            raise ConfigError(f"llama.cpp splits a model over at most {MAX_MEMBERS} machines")

    @property
    def members(self) -> tuple[ClusterMember, ...]:
        return (self.here, *self.workers)

    def placement(self, n_layers: int) -> tuple[tuple[ClusterMember, ...], list[int]]:
        """The members in the order layers fill them, and the index of the member holding each
        of the ``n_layers + 1`` layers (the last is the output layer)."""
        if self.here.backend is not None or not self.workers:
            order = (*self.workers, self.here)
            return order, split_layers(n_layers, [m.memory_bytes for m in order])
        total = sum(m.memory_bytes for m in self.members)
        share = self.here.memory_bytes / total if total else 0.0
        local = min(round(share * (n_layers + 1)), n_layers)  # blocks this CPU keeps
        rest = split_layers(n_layers - local, [m.memory_bytes for m in self.workers])
        return (self.here, *self.workers), [0] * local + [1 + device for device in rest]


@dataclass(frozen=True)
class MemberShare:
    """What one member holds: a run of consecutive layers and the buffers that go with them."""

    member: ClusterMember
    first_layer: int
    n_layers: int  # blocks of the model on this member
    output: bool  # the output layer (the last of llama.cpp's n_layers + 1)
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    other_bytes: int  # backend overhead; on the main machine also embeddings and runtime
    ram_bytes: int  # the main machine's RAM-side need when its device does not share RAM
    read_bytes_per_token: float

    @property
    def need_bytes(self) -> int:
        return self.weights_bytes + self.kv_bytes + self.compute_bytes + self.other_bytes

    @property
    def headroom(self) -> float:
        """Share of the member's memory left free (negative: it does not fit)."""
        memory = self.member.memory_bytes
        return (memory - self.need_bytes) / memory if memory else -1.0

    @property
    def fits(self) -> bool:
        ram_ok = self.member.shares_ram or self.ram_bytes <= self.member.ram_bytes
        return self.need_bytes <= self.member.memory_bytes and ram_ok


@dataclass(frozen=True)
class ClusterPlan:
    cluster: Cluster
    kind: ClusterKind
    text: str  # "fits across 3 machines: 180 GiB here, 2 × 150 GiB on workers"
    shares: tuple[MemberShare, ...]  # in the order layers fill the members
    tokens_per_s: float | None
    speed_basis: str
    network_s_per_token: float

    @property
    def fits(self) -> bool:
        return self.kind != "no_fit"


def split_layers(n_layers: int, memory: list[int]) -> list[int]:
    """The device of each of the ``n_layers + 1`` layers (the last is the output layer), split
    by free memory as llama.cpp does when the user gives no tensor split."""
    total = sum(memory)
    last = len(memory) - 1
    if total <= 0:  # no memory anywhere: the last device gets it all, and cannot hold it
        return [last] * (n_layers + 1)
    cumulative: list[float] = []
    running = 0
    for free in memory:
        running += free
        cumulative.append(running / total)
    count = n_layers + 1
    return [min(bisect.bisect_right(cumulative, il / count), last) for il in range(count)]


def plan_cluster(facts: ModelFacts, plan: LoadPlan, cluster: Cluster) -> ClusterPlan:
    """Where each layer of ``facts`` goes across ``cluster``, each member's memory, the verdict
    and the decode speed (``plan`` gives the context, KV type and flash attention)."""
    if plan.n_ctx < 1:
        raise ConfigError("the context size must be at least 1 token")
    n = facts.n_layers
    order, devices = cluster.placement(n)
    kv = kv_layer_bytes(facts, plan)
    reserved, touched = compute_buffer_bytes(facts, plan)
    shares: list[MemberShare] = []
    for index, member in enumerate(order):
        layers = [il for il in range(n) if devices[il] == index]
        output = devices[n] == index
        main = member is cluster.here
        weights = kv_bytes = 0
        read = 0.0
        for il in layers:
            own, active = layer_read_bytes(facts, il)
            weights += facts.layer_bytes[il] + facts.layer_expert_bytes[il]
            kv_bytes += kv[il]
            read += own + active
            if main and member.backend is None and plan.cpu_repack and facts.layer_repack_bytes:
                weights += facts.layer_repack_bytes[il]  # only the local CPU repacks
        if output:
            # A tied output reuses the embeddings in place only on this machine's CPU.
            tied = 0 if main and member.backend is None else facts.tied_output_bytes
            weights += facts.output_bytes + tied
            read += facts.output_bytes + facts.tied_output_bytes
        busy = bool(layers) or output
        compute = (reserved if member.backend else touched) if busy else 0
        other = BACKEND_OVERHEAD.get(member.backend or "", 0) if busy else 0
        ram_side = 0
        if main:
            ram_side = facts.input_bytes + runtime_bytes(facts, plan)
            if member.shares_ram:
                other += ram_side
                ram_side = 0
        shares.append(
            MemberShare(
                member, layers[0] if layers else 0, len(layers), output, weights, kv_bytes,
                compute, other, ram_side, read,
            )
        )  # fmt: skip
    kind, text = _verdict(cluster, shares)
    tps, basis, network = _speed(facts, cluster, shares)
    if kind == "no_fit":  # no speed for a load that cannot happen
        tps, basis = None, "does not fit"
    return ClusterPlan(cluster, kind, text, tuple(shares), tps, basis, network)


def _verdict(cluster: Cluster, shares: list[MemberShare]) -> tuple[ClusterKind, str]:
    count = len(cluster.members)
    across = f"across {count} machines" if count > 1 else "on one machine"
    short = next((s for s in shares if not s.fits), None)
    need_all = sum(s.need_bytes for s in shares)
    room_all = sum(m.memory_bytes for m in cluster.members)
    if short is not None and need_all > room_all:
        return "no_fit", (
            f"does not fit {across}: needs {format_size(need_all)} in all; "
            f"{format_size(room_all)} is usable"
        )
    if short is not None:
        member = short.member
        where = "here" if member.role == "here" else f"on worker {member.name}"
        if short.need_bytes > member.memory_bytes:
            need, room, memory = short.need_bytes, member.memory_bytes, "memory"
        else:
            need, room, memory = short.ram_bytes, member.ram_bytes, "RAM"
        return "no_fit", (
            f"does not fit {across}: its share {where} needs {format_size(need)} of {memory}; "
            f"{format_size(room)} is usable"
        )
    here = next(s for s in shares if s.member is cluster.here)
    parts = [f"{format_size(here.need_bytes + here.ram_bytes)} here"]
    worker_sizes = [format_size(s.need_bytes) for s in shares if s.member is not cluster.here]
    if worker_sizes:
        sizes = [  # "2 × 150 GiB + 20 GiB": equal shares once, with their count
            f"{worker_sizes.count(size)} × {size}" if worker_sizes.count(size) > 1 else size
            for size in dict.fromkeys(worker_sizes)
        ]
        noun = "workers" if len(worker_sizes) > 1 else "the worker"
        parts.append(f"{' + '.join(sizes)} on {noun}")
    tight = any(s.headroom < TIGHT_HEADROOM for s in shares if s.n_layers or s.output)
    lead = f"fits {across}, but tight" if tight else f"fits {across}"
    return ("tight" if tight else "fits"), f"{lead}: {', '.join(parts)}"


def network_seconds(facts: ModelFacts, layers: int, link_gbps: float) -> float:
    """Per token, what a worker holding ``layers`` blocks costs on the link."""
    sent = 2 * facts.n_embd * ACTIVATION_BYTES_PER_VALUE + layers * GRAPH_BYTES_PER_LAYER
    return sent / (link_gbps * 1e9 / 8) + ROUND_TRIPS_PER_WORKER * LAN_ROUND_TRIP_S


def _speed(
    facts: ModelFacts, cluster: Cluster, shares: list[MemberShare]
) -> tuple[float | None, str, float]:
    network = sum(
        network_seconds(facts, s.n_layers, cluster.link_gbps)
        for s in shares
        if s.member.role == "worker" and (s.n_layers or s.output)
    )
    compute = 0.0
    for s in shares:
        if not s.read_bytes_per_token:
            continue
        bandwidth = s.member.bandwidth_gbs
        if not bandwidth:
            return None, f"unknown: no memory bandwidth figure for {s.member.name}", network
        compute += s.read_bytes_per_token / (bandwidth * 1e9 * s.member.efficiency)
    total = compute + network
    if total <= 0:
        return None, "unknown", network
    moe = ", active experts only" if facts.is_moe else ""
    basis = (
        "estimated: each machine's share of weights read per token ÷ its bandwidth × efficiency"
        f"{moe}, plus {cluster.link_gbps:g} Gbit/s link and {ROUND_TRIPS_PER_WORKER} LAN round "
        "trips per worker"
    )
    return 1 / total, basis, network


@dataclass(frozen=True)
class ClusterVerdict:
    variant: Variant
    plan: ClusterPlan
    recommended: bool = False


def recommend_cluster(
    variants: list[Variant], n_ctx: int, cluster: Cluster, kv_cache_type: KvCacheType = "f16"
) -> list[ClusterVerdict]:
    """Every variant planned across ``cluster``, best quality first; the best quality that fits
    with room to spare is recommended, else the best one that fits at all."""
    flash = kv_cache_type != "f16"  # llama.cpp needs flash attention for a quantized KV cache
    plan = LoadPlan(n_ctx=n_ctx, kv_cache_type=kv_cache_type, flash_attn=flash)
    verdicts = [ClusterVerdict(v, plan_cluster(v.facts, plan, cluster)) for v in variants]
    verdicts.sort(
        key=lambda v: (quant_quality(v.variant.quant).rank_loss, v.variant.file_size or 0)
    )
    roomy = [v for v in verdicts if v.plan.kind == "fits"]
    fitting = [v for v in verdicts if v.plan.fits]
    pick = (roomy or fitting)[0] if fitting else None
    return [ClusterVerdict(v.variant, v.plan, v is pick) for v in verdicts]
