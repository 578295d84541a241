"""Memory estimates: KV per layer, sliding windows, placement between GPU and RAM."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.catalog.estimator import (
    LoadPlan,
    ModelFacts,
    estimate,
    kv_layer_bytes,
    layers_that_fit,
    parallel_cost_bytes,
    parallel_that_fits,
)
from app.core.catalog.gguf_header import read_local_model
from app.core.errors import ConfigError
from app.core.sizes import MIB
from tests.fixtures.gguf_writer import write_tiny_model


@pytest.fixture(scope="module")
def starter_facts(starter_model: Path) -> ModelFacts:
    return ModelFacts.from_header(read_local_model(starter_model))


# Resident memory growth after load, llama-cpp-python 0.3.36, CPU (issue 3 and this machine).
@pytest.mark.parametrize(("n_ctx", "measured_mib"), [(2048, 333), (8192, 441), (32768, 876)])
def test_starter_model_cpu_estimate_is_within_ten_percent(
    starter_facts: ModelFacts, n_ctx: int, measured_mib: float
) -> None:
    predicted = estimate(starter_facts, LoadPlan(n_ctx=n_ctx)).ram_after_load_bytes / MIB
    assert abs(predicted - measured_mib) / measured_mib < 0.10


def test_full_size_swa_cache_is_what_llama_cpp_python_allocates(starter_facts: ModelFacts) -> None:
    # llama.cpp logged 24 MiB (3 global layers) + 120 MiB (15 SWA layers, full size) at 8192.
    full = kv_layer_bytes(starter_facts, LoadPlan(n_ctx=8192))
    assert sum(full) == 144 * MIB
    # Without swa_full the 15 SWA layers hold pad256(512 + 512) = 1024 cells: 15 MiB.
    windowed = kv_layer_bytes(starter_facts, LoadPlan(n_ctx=8192, swa_full=False))
    assert sum(windowed) == 24 * MIB + 15 * MIB


def test_each_slot_adds_a_context_of_kv_cache(starter_facts: ModelFacts) -> None:
    four = kv_layer_bytes(starter_facts, LoadPlan(n_ctx=2048, parallel=4))
    assert sum(four) == sum(kv_layer_bytes(starter_facts, LoadPlan(n_ctx=8192)))
    plan = LoadPlan(n_ctx=2048, parallel=4)
    assert parallel_cost_bytes(starter_facts, plan) >= 3 * sum(
        kv_layer_bytes(starter_facts, LoadPlan(n_ctx=2048))
    )


def test_automatic_slots_are_what_the_memory_holds_between_two_and_eight(
    starter_facts: ModelFacts,
) -> None:
    plan = LoadPlan(n_ctx=4096)
    assert parallel_that_fits(starter_facts, plan, 0) == 2
    assert parallel_that_fits(starter_facts, plan, 2**40) == 8
    five = estimate(starter_facts, LoadPlan(n_ctx=4096, parallel=5)).ram_bytes
    assert parallel_that_fits(starter_facts, plan, five) == 5


def test_quantized_kv_sizes_follow_block_sizes(starter_facts: ModelFacts) -> None:
    q8 = kv_layer_bytes(starter_facts, LoadPlan(n_ctx=8192, kv_cache_type="q8_0", flash_attn=True))
    q4 = kv_layer_bytes(starter_facts, LoadPlan(n_ctx=8192, kv_cache_type="q4_0", flash_attn=True))
    assert sum(q8) == int(76.5 * MIB)  # llama.cpp logged 12.75 + 63.75 MiB
    assert sum(q4) == int(40.5 * MIB)  # 6.75 + 33.75 MiB


def test_quantized_kv_without_flash_attention_is_refused(starter_facts: ModelFacts) -> None:
    with pytest.raises(ConfigError, match="flash attention"):
        estimate(starter_facts, LoadPlan(n_ctx=2048, kv_cache_type="q8_0"))


def test_gpu_layers_move_weights_and_kv_off_the_ram(starter_facts: ModelFacts) -> None:
    cpu = estimate(starter_facts, LoadPlan(n_ctx=4096))
    half = estimate(starter_facts, LoadPlan(n_ctx=4096, n_gpu_layers=9, gpu_backend="cuda"))
    full = estimate(starter_facts, LoadPlan(n_ctx=4096, n_gpu_layers=-1, gpu_backend="cuda"))
    assert cpu.gpu_bytes == 0
    assert half.gpu_layers == 9
    assert not half.output_on_gpu
    assert 0 < half.gpu_bytes < full.gpu_bytes
    assert full.ram_bytes < half.ram_bytes < cpu.ram_bytes
    assert full.output_on_gpu
    # The tied embedding is copied to the GPU as the output matrix: the GPU holds more than the file.
    assert full.gpu_bytes > sum(starter_facts.layer_bytes) + starter_facts.tied_output_bytes


def test_layers_that_fit_is_monotonic_in_budget(starter_facts: ModelFacts) -> None:
    plan = LoadPlan(n_ctx=4096, gpu_backend="cuda")
    small = layers_that_fit(starter_facts, plan, 600 * MIB)
    large = layers_that_fit(starter_facts, plan, 800 * MIB)
    assert 0 <= small <= 18
    assert large == -1 or large >= small
    assert layers_that_fit(starter_facts, plan, 10 * 2**30) == -1


def test_experts_on_cpu_move_only_expert_weights(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "moe.gguf", n_layers=4, n_expert=8, n_expert_used=2)
    facts = ModelFacts.from_header(read_local_model(path))
    assert facts.is_moe
    assert facts.active_params < facts.total_params
    base = LoadPlan(n_ctx=512, n_gpu_layers=-1, gpu_backend="cuda")
    all_gpu = estimate(facts, base)
    two_cpu = estimate(facts, LoadPlan(**{**base.__dict__, "moe_experts_on_cpu_layers": 2}))
    moved = sum(facts.layer_expert_bytes[:2])
    assert all_gpu.gpu_bytes - two_cpu.gpu_bytes == moved


def test_correction_factor_scales_and_is_labelled(starter_facts: ModelFacts) -> None:
    plain = estimate(starter_facts, LoadPlan(n_ctx=2048))
    corrected = estimate(starter_facts, LoadPlan(n_ctx=2048), 1.1, "3 loads measured here")
    assert corrected.ram_bytes == pytest.approx(plain.ram_bytes * 1.1, rel=1e-6)
    assert "measured here" in corrected.basis
    with pytest.raises(ConfigError):
        estimate(starter_facts, LoadPlan(n_ctx=2048), 40.0)
