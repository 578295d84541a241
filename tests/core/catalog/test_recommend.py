"""Verdicts and the pick across planning profiles, and the catalog every profile can plan with."""

from __future__ import annotations

import pytest

from app.core.catalog.catalog import catalog_variants, get_entry, load_catalog
from app.core.catalog.recommend import recommend
from app.core.hardware.builtin_profiles import builtin_profiles
from app.core.hardware.profile import HardwareProfile

PROFILES = {p.name: p for p in builtin_profiles()}
REQUIRED = [
    "phi-3-mini-4k-instruct", "phi-3-medium-4k-instruct", "mistral-7b-instruct-v0.3",
    "mistral-nemo-instruct-2407", "llama-3.1-8b-instruct", "llama-3.1-70b-instruct",
    "gemma-2-9b-it", "gemma-3-12b-it", "qwen2.5-7b-instruct", "qwen2.5-coder-7b-instruct",
    "qwen3-8b", "qwen3-30b-a3b", "glm-5.2", "gpt-oss-20b", "gpt-oss-120b",
]  # fmt: skip


def _profile(name: str) -> HardwareProfile:
    return PROFILES[name]


def test_catalog_has_the_required_models() -> None:
    entries = load_catalog()
    for model in REQUIRED:
        assert get_entry(model, entries).variants


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_catalog_entry_gets_a_verdict_on_every_profile(profile: str) -> None:
    for entry in load_catalog():
        verdicts = recommend(_profile(profile), catalog_variants(entry), 8192)
        assert len(verdicts) == len(entry.variants)
        assert sum(v.recommended for v in verdicts) <= 1
        for v in verdicts:
            assert v.reason


def test_big_glm_two_bit_fits_the_512gb_mac_studio_on_its_gpu() -> None:
    entry = get_entry("glm-5.2", load_catalog())
    verdicts = recommend(_profile("Mac Studio M3 Ultra 512GB"), catalog_variants(entry), 32768)
    by_quant = {v.variant.quant: v for v in verdicts}
    assert by_quant["UD-IQ2_M"].kind == "gpu"
    assert by_quant["Q8_0"].kind == "no_fit"
    assert by_quant["UD-IQ2_M"].recommended


def test_moe_on_a_24gb_gpu_puts_some_experts_in_ram() -> None:
    entry = get_entry("qwen3-30b-a3b", load_catalog())
    verdicts = recommend(_profile("RTX 4090 24GB + 64GB RAM"), catalog_variants(entry), 8192)
    by_quant = {v.variant.quant: v for v in verdicts}
    q8 = by_quant["Q8_0"]
    assert q8.kind == "moe_offload"
    assert 0 < q8.moe_experts_on_cpu_layers < 48
    assert by_quant["Q4_K_M"].kind == "gpu"
    # The MoE speed comes from active parameters: far faster than a dense model of that size.
    dense = get_entry("qwen2.5-coder-32b-instruct", load_catalog())
    dense_q4 = next(
        v
        for v in recommend(_profile("RTX 4090 24GB + 64GB RAM"), catalog_variants(dense), 8192)
        if v.variant.quant == "Q4_K_M"
    )
    assert by_quant["Q4_K_M"].tokens_per_s > 3 * (dense_q4.tokens_per_s or 0)


def test_dense_70b_on_a_24gb_gpu_is_partial_offload() -> None:
    entry = get_entry("llama-3.1-70b-instruct", load_catalog())
    verdicts = recommend(_profile("RTX 4090 24GB + 64GB RAM"), catalog_variants(entry), 8192)
    q4 = next(v for v in verdicts if v.variant.quant == "Q4_K_M")
    assert q4.kind == "partial"
    assert 0 < q4.gpu_layers < 80
    assert q4.gpu_bytes <= 24 * 2**30


def test_cpu_only_profile_never_uses_a_gpu_and_refuses_what_ram_cannot_hold() -> None:
    entry = get_entry("llama-3.1-70b-instruct", load_catalog())
    verdicts = recommend(_profile("CPU only 32GB DDR5"), catalog_variants(entry), 8192)
    assert all(v.gpu_bytes == 0 for v in verdicts)
    assert next(v for v in verdicts if v.variant.quant == "Q8_0").kind == "no_fit"


def test_a_gpu_the_build_cannot_use_means_cpu_only() -> None:
    from dataclasses import replace

    profile = _profile("RTX 3060 12GB + 32GB RAM")
    gpu = replace(profile.gpus[0], usable_by_build=False, unusable_reason="CPU-only build")
    cpu_build = replace(profile, gpus=(gpu,), backends=("cpu",))
    entry = get_entry("qwen3-4b", load_catalog())
    verdicts = recommend(cpu_build, catalog_variants(entry), 4096)
    assert {v.kind for v in verdicts} <= {"cpu", "no_fit"}
    assert "CPU-only build" in verdicts[0].reason


def test_quality_goal_picks_best_quality_that_fits() -> None:
    entry = get_entry("llama-3.1-8b-instruct", load_catalog())
    verdicts = recommend(
        _profile("RTX 3060 12GB + 32GB RAM"), catalog_variants(entry), 8192, "quality"
    )
    pick = next(v for v in verdicts if v.recommended)
    assert pick.variant.quant == "F16"  # 15 GiB fits as partial offload + RAM
    balanced = recommend(_profile("RTX 3060 12GB + 32GB RAM"), catalog_variants(entry), 8192)
    assert next(v for v in balanced if v.recommended).kind == "gpu"
