"""Planning a load across machines: llama.cpp's split by free memory, verdicts, network-aware speed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.core.catalog.catalog import catalog_variants, find_entry, load_catalog
from app.core.catalog.cluster import (
    Cluster,
    ClusterMember,
    ClusterPlan,
    MemberShare,
    plan_cluster,
    recommend_cluster,
    split_layers,
)
from app.core.catalog.estimator import LoadPlan, ModelFacts
from app.core.catalog.recommend import Variant
from app.core.errors import ConfigError, UnknownProfile
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.profiles import get_profiles
from app.core.sizes import GIB
from app.core.storage.paths import AppPaths

PROFILES = {p.name: p for p in builtin_profiles()}
MAC_256 = PROFILES["Mac Studio M3 Ultra 256GB"]
PLAN = LoadPlan(n_ctx=8192)


def _glm(quant: str) -> Variant:
    entry = find_entry("glm-5.2", load_catalog())
    assert entry is not None
    assert entry.params_b >= 700
    return next(v for v in catalog_variants(entry) if v.quant == quant)


def _macs(workers: int, link_gbps: float = 10.0) -> Cluster:
    here = ClusterMember.of_profile(MAC_256, "here")
    worker = ClusterMember.of_profile(MAC_256, "worker")
    return Cluster(here, (worker,) * workers, link_gbps)


def _member(
    name: str, memory_gib: int, role: str = "worker", gbs: float | None = 100.0
) -> ClusterMember:
    return ClusterMember(
        name=name,
        role="here" if role == "here" else "worker",
        memory_bytes=memory_gib * GIB,
        memory_basis="test",
        backend=None,
        bandwidth_gbs=gbs,
        efficiency=0.6,
        bandwidth_basis="test",
        ram_bytes=memory_gib * GIB,
    )


def test_a_744b_model_at_2_bits_fits_two_256gb_workers_and_this_machine() -> None:
    facts = _glm("UD-IQ2_M").facts
    alone = plan_cluster(facts, PLAN, _macs(0))
    assert alone.kind == "no_fit"
    assert alone.tokens_per_s is None

    plan = plan_cluster(facts, PLAN, _macs(2))
    assert plan.kind == "fits"
    assert plan.text.startswith("fits across 3 machines: ")
    assert " here, 2 × " in plan.text
    assert plan.text.endswith(" on workers")
    # Every block lands on exactly one machine, in order; the output layer on this machine.
    assert [s.member.role for s in plan.shares] == ["worker", "worker", "here"]
    covered = [il for s in plan.shares for il in range(s.first_layer, s.first_layer + s.n_layers)]
    assert covered == list(range(facts.n_layers))
    assert [s.output for s in plan.shares] == [False, False, True]
    assert all(s.fits and s.kv_bytes > 0 and s.compute_bytes > 0 for s in plan.shares)
    total_weights = sum(s.weights_bytes for s in plan.shares)
    assert total_weights == sum(facts.layer_bytes) + sum(facts.layer_expert_bytes) + (
        facts.output_bytes + facts.tied_output_bytes
    )
    assert plan.tokens_per_s is not None
    assert plan.tokens_per_s > 0
    assert plan.speed_basis.startswith("estimated")


def _share(plan: ClusterPlan, name: str) -> MemberShare:
    return next(s for s in plan.shares if s.member.name == name)


def test_layers_split_in_proportion_to_free_memory() -> None:
    devices = split_layers(59, [100, 200, 300])  # 60 layers with the output
    counts = [devices.count(i) for i in range(3)]
    assert counts == [10, 20, 30]
    assert devices == sorted(devices)  # contiguous runs, in device order

    facts = _glm("UD-IQ1_M").facts
    cluster = Cluster(_member("here", 300, "here"), (_member("a", 100), _member("b", 200)))
    plan = plan_cluster(facts, PLAN, cluster)
    n = facts.n_layers + 1
    for name, memory in (("here", 300), ("a", 100), ("b", 200)):
        share = _share(plan, name)
        assert abs(share.n_layers + share.output - n * memory / 600) <= 1
    # Bigger shares need more memory.
    assert _share(plan, "a").need_bytes < _share(plan, "b").need_bytes


def test_a_cpu_here_keeps_the_first_layers_and_the_last_worker_the_output() -> None:
    facts = _glm("UD-IQ1_M").facts
    cluster = Cluster(_member("here", 300, "here"), (_member("a", 100), _member("b", 200)))
    plan = plan_cluster(facts, PLAN, cluster)
    assert [s.member.name for s in plan.shares] == ["here", "a", "b"]
    assert plan.shares[0].first_layer == 0
    assert [s.output for s in plan.shares] == [False, False, True]
    covered = [il for s in plan.shares for il in range(s.first_layer, s.first_layer + s.n_layers)]
    assert covered == list(range(facts.n_layers))


def test_a_gpu_here_takes_the_last_layers_and_the_output() -> None:
    facts = _glm("UD-IQ1_M").facts
    here = replace(_member("here", 300, "here"), backend="cuda")
    plan = plan_cluster(facts, PLAN, Cluster(here, (_member("a", 300),)))
    assert [s.member.name for s in plan.shares] == ["a", "here"]
    assert plan.shares[0].first_layer == 0
    assert [s.output for s in plan.shares] == [False, True]


def test_a_machine_without_memory_gets_no_layers() -> None:
    facts = _glm("UD-IQ1_M").facts
    cluster = Cluster(_member("here", 256, "here"), (_member("empty", 0), _member("big", 256)))
    plan = plan_cluster(facts, PLAN, cluster)
    empty = _share(plan, "empty")
    assert empty.n_layers == 0
    assert not empty.output
    assert empty.need_bytes == 0
    # No memory anywhere: the last device gets everything, and the verdict says it does not fit.
    assert split_layers(10, [0, 0]) == [1] * 11
    nothing = Cluster(_member("here", 0, "here"), (_member("w", 0),))
    assert plan_cluster(facts, PLAN, nothing).kind == "no_fit"


def test_too_big_for_the_cluster_does_not_fit_and_says_how_much() -> None:
    plan = plan_cluster(_glm("Q8_0").facts, PLAN, _macs(2))
    assert plan.kind == "no_fit"
    assert plan.text.startswith("does not fit across 3 machines: needs ")
    assert "is usable" in plan.text
    assert plan.tokens_per_s is None


def test_one_small_member_overflowing_is_named() -> None:
    facts = _glm("UD-IQ1_M").facts
    # The split follows memory, but a worker's fixed buffers can still tip a tiny share over.
    here = replace(_member("here", 400, "here"), backend="cuda")
    roomy = plan_cluster(facts, PLAN, Cluster(here, (_member("w", 1),)))
    worker = _share(roomy, "w")
    assert worker.n_layers == 1  # llama.cpp still gives the first layer to the first device
    assert not worker.fits
    assert roomy.kind == "no_fit"
    assert "its share on worker w needs " in roomy.text


def test_tight_when_a_share_leaves_little_room() -> None:
    facts = _glm("UD-IQ2_M").facts
    roomy = plan_cluster(facts, PLAN, _macs(2))
    need = max(s.need_bytes for s in roomy.shares)
    # Just enough for the largest share on every machine: fits, but without headroom.
    snug = replace(_member("here", 0, "here"), memory_bytes=int(need * 1.01), bandwidth_gbs=800)
    cluster = Cluster(
        snug, (replace(snug, name="w1", role="worker"), replace(snug, name="w2", role="worker"))
    )
    plan = plan_cluster(facts, PLAN, cluster)
    assert plan.kind == "tight"
    assert plan.text.startswith("fits across 3 machines, but tight: ")


def test_speed_includes_the_network_and_drops_on_a_slower_link() -> None:
    facts = _glm("UD-IQ2_M").facts
    fast = plan_cluster(facts, PLAN, _macs(2, link_gbps=10))
    slow = plan_cluster(facts, PLAN, _macs(2, link_gbps=1))
    assert fast.network_s_per_token > 0
    assert slow.network_s_per_token > fast.network_s_per_token
    assert fast.tokens_per_s is not None
    assert slow.tokens_per_s is not None
    assert slow.tokens_per_s < fast.tokens_per_s
    # The memory part is the same; the difference is exactly the network's.
    gap = 1 / slow.tokens_per_s - 1 / fast.tokens_per_s
    assert gap == pytest.approx(slow.network_s_per_token - fast.network_s_per_token)
    assert "10 Gbit/s" in fast.speed_basis
    assert "1 Gbit/s" in slow.speed_basis


def test_no_workers_means_no_network_cost() -> None:
    plan = plan_cluster(_glm("UD-IQ1_M").facts, PLAN, _macs(0))
    assert plan.network_s_per_token == 0


def test_unknown_bandwidth_gives_no_speed_and_says_whose() -> None:
    facts = _glm("UD-IQ1_M").facts
    cluster = Cluster(_member("here", 300, "here"), (_member("mystery", 300, gbs=None),))
    plan = plan_cluster(facts, PLAN, cluster)
    assert plan.fits
    assert plan.tokens_per_s is None
    assert "mystery" in plan.speed_basis


def test_recommend_picks_the_best_quality_that_fits_the_cluster() -> None:
    entry = find_entry("glm-5.2", load_catalog())
    assert entry is not None
    verdicts = recommend_cluster(catalog_variants(entry), 8192, _macs(2))
    (pick,) = [v for v in verdicts if v.recommended]
    assert pick.variant.quant == "UD-IQ2_M"
    nothing = recommend_cluster([_glm("Q8_0")], 8192, _macs(1))
    assert not any(v.recommended for v in nothing)


def test_cluster_rejects_a_bad_link_and_too_many_machines() -> None:
    here = _member("here", 10, "here")
    with pytest.raises(ConfigError):
        Cluster(here, (), link_gbps=0)
    with pytest.raises(ConfigError):
        Cluster(here, (_member("w", 10),) * 16)


def test_member_from_a_cpu_profile_uses_ram_and_its_bandwidth() -> None:
    cpu = ClusterMember.of_profile(PROFILES["CPU only 32GB DDR5"], "worker")
    assert cpu.backend is None
    assert 0 < cpu.memory_bytes < 32 * GIB
    assert cpu.bandwidth_gbs
    assert cpu.bandwidth_basis.startswith("assumed")


def test_member_reported_by_a_live_worker() -> None:
    member = ClusterMember.reported("10.0.0.2:50052", 64 * GIB, "CPU")
    assert member.role == "worker"
    assert member.name == "10.0.0.2:50052"
    assert member.memory_bytes == 63 * GIB  # less llama.cpp's 1 GiB margin
    assert member.bandwidth_gbs is None
    assert ClusterMember.reported("h:1", GIB // 2, "CPU").memory_bytes == 0


def test_facts_with_tied_output_count_it_once() -> None:
    facts = _glm("UD-IQ1_M").facts
    tied = replace(facts, output_bytes=0, tied_output_bytes=facts.input_bytes)
    assert isinstance(tied, ModelFacts)
    plan = plan_cluster(tied, PLAN, _macs(1))
    here = plan.shares[-1]
    assert here.output
    assert here.weights_bytes >= tied.tied_output_bytes


def test_profiles_by_count(tmp_path: Path) -> None:
    paths = AppPaths(tmp_path / "c", tmp_path / "d", tmp_path / "k", tmp_path / "l")
    assert len(get_profiles("2x Mac Studio M3 Ultra 256GB", paths)) == 2
    assert len(get_profiles("3 × mac studio m3 ultra 256gb", paths)) == 3
    # A profile whose own name starts with a count is one machine.
    (two_gpus,) = get_profiles("2x RTX 3090 + 128GB RAM", paths)
    assert two_gpus.name == "2x RTX 3090 + 128GB RAM"
    with pytest.raises(ConfigError):
        get_profiles("99x Mac Studio M3 Ultra 256GB", paths)
    with pytest.raises(ConfigError):
        get_profiles("0x Mac Studio M3 Ultra 256GB", paths)
    with pytest.raises(UnknownProfile):
        get_profiles("2x Cray-1", paths)
    with pytest.raises(UnknownProfile):
        get_profiles("9" * 5000 + "x Cray-1", paths)
