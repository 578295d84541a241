"""One fit rule: the Load dialog's verdict on a choice and the recommender's verdict agree."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from app.core.catalog.catalog import catalog_variants, load_catalog
from app.core.catalog.fit import RAM_RESERVE_SHARE, Machine, judge_load
from app.core.catalog.load_plan import plan_load, variant_for_file, verdict_options
from app.core.catalog.recommend import recommend
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.profile import HardwareProfile
from app.core.load_options import LoadOptions
from tests.fixtures.gguf_writer import write_tiny_model

PROFILES = {p.name: p for p in builtin_profiles()}
RTX_4090 = "RTX 4090 24GB + 64GB RAM"  # GPU figures from a recorded nvidia-smi
# Without flash attention the K·Q scores of a 3M-token context need ~34 GiB of compute buffer:
# more than the 4090's GPU memory, well within its machine's RAM.
LONG_CTX = 3_000_000


@pytest.fixture
def long_context_model(tmp_path: Path) -> Path:
    (path,) = write_tiny_model(tmp_path / "long-F16.gguf", context_length=LONG_CTX)
    return path


def _ram_only_rule(profile: HardwareProfile, ram_bytes: int) -> bool:
    """What the Load dialog checked before: the estimate's RAM share against RAM alone."""
    return ram_bytes <= (profile.ram_available_bytes or profile.ram_total_bytes)


def test_a_load_the_gpu_cannot_hold_is_refused_as_the_recommender_refuses_it(
    long_context_model: Path,
) -> None:
    profile = PROFILES[RTX_4090]
    facts = plan_load(long_context_model, profile, LONG_CTX, correction=None)
    assert facts.verdict.kind == "cpu"  # the recommender keeps it off the GPU
    assert facts.gpu_backend == "cuda"

    every_layer = facts.judge(LoadOptions(long_context_model, n_ctx=LONG_CTX, n_gpu_layers=-1))
    # The RAM-only rule called this a fit; the GPU budget the recommender counts says no.
    assert _ram_only_rule(profile, every_layer.estimate.ram_bytes)
    assert not every_layer.fits
    assert every_layer.kind == "no_fit"
    assert "of GPU memory" in every_layer.reason
    assert every_layer.estimate.gpu_bytes > Machine.of(profile).gpu_budget

    suggested = facts.judge(facts.suggested)
    assert suggested.fits
    assert (suggested.kind, suggested.label) == (facts.verdict.kind, facts.verdict.label)
    assert suggested.estimate.ram_bytes == facts.verdict.ram_bytes


def test_a_gpu_backend_the_build_lacks_is_not_offered(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    # The card reports itself usable, but this llama.cpp build has no CUDA backend.
    profile = replace(PROFILES["RTX 3060 12GB + 32GB RAM"], backends=("cpu",))
    assert profile.gpus[0].usable_by_build
    facts = plan_load(path, profile, 256, correction=None)
    assert facts.gpu_backend is None
    assert facts.verdict.kind == "cpu"
    fit = facts.judge(LoadOptions(path, n_ctx=256, n_gpu_layers=-1))
    assert fit.backend is None
    assert fit.estimate.gpu_bytes == 0
    assert (fit.kind, fit.label) == ("cpu", "CPU only")


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_fitting_verdict_is_a_fit_for_the_load_it_plans(profile: str) -> None:
    machine = Machine.of(PROFILES[profile])
    for entry in load_catalog():
        for verdict in recommend(PROFILES[profile], catalog_variants(entry), 8192):
            options = verdict_options(verdict, Path(f"{entry.id}.gguf"))
            fit = judge_load(machine, verdict.variant.facts, options)
            assert fit.kind == verdict.kind, (entry.id, verdict.variant.quant)
            assert fit.label == verdict.label
            assert (fit.estimate.gpu_bytes, fit.estimate.ram_bytes) == (
                verdict.gpu_bytes,
                verdict.ram_bytes,
            )


def test_a_unified_machine_counts_gpu_and_cpu_shares_against_one_pool(tmp_path: Path) -> None:
    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    mac = PROFILES["MacBook Pro M4 Max 128GB"]
    facts = variant_for_file(path).variant.facts
    options = LoadOptions(path, n_ctx=256, n_gpu_layers=-1)
    est = judge_load(Machine.of(mac), facts, options).estimate
    # Room for each share alone (the GPU's within its working set, the CPU's within RAM), but
    # not for both out of the one pool.
    gpu = replace(mac.gpus[0], usable_memory_bytes=est.gpu_bytes + 2 * 2**30)
    pool = int((est.gpu_bytes + est.ram_bytes) / (1 - RAM_RESERVE_SHARE)) - 64
    tight = replace(mac, gpus=(gpu,), ram_total_bytes=pool)
    machine = Machine.of(tight)
    assert est.gpu_bytes <= machine.gpu_budget
    assert est.ram_bytes <= machine.ram_budget
    fit = judge_load(machine, facts, options)
    assert not fit.fits
    assert "shared by GPU and CPU" in fit.reason


def test_a_file_reads_into_the_same_variant_for_fit_and_the_dialog(tmp_path: Path) -> None:
    (first, *_rest) = write_tiny_model(tmp_path / "split-F16.gguf", split_max_tensors=4)
    file = variant_for_file(first)
    assert file.variant.quant == "F16"
    assert file.variant.file_size == sum(p.stat().st_size for p in tmp_path.glob("split-F16*"))
    assert file.n_ctx_train == 256
    assert variant_for_file(first, quant="Q4_K_M").variant.quant == "Q4_K_M"  # the library's
    facts = plan_load(first, PROFILES[RTX_4090], 8192, correction=None)
    assert facts.file == file
    assert facts.suggested.n_ctx == 256  # capped at the trained context


def test_a_quantized_kv_cache_without_flash_attention_is_a_clear_error(tmp_path: Path) -> None:
    from app.core.errors import ConfigError

    (path,) = write_tiny_model(tmp_path / "tiny-F16.gguf")
    facts = plan_load(path, PROFILES[RTX_4090], 256, correction=None)
    with pytest.raises(ConfigError, match="flash attention"):
        facts.judge(LoadOptions(path, n_ctx=256, kv_cache_type="q8_0"))
