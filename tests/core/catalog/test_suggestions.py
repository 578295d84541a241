"""Suggestions for a machine: the largest readable model of each family, with its reason."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.core.catalog.catalog import load_catalog
from app.core.catalog.recommend import READABLE_TOKENS_PER_S
from app.core.catalog.suggestions import UNKNOWN_SPEED_MAX_ACTIVE_B, suggest, verdicts_for
from app.core.hardware.builtin_profiles import builtin_profiles

PROFILES = {p.name: p for p in builtin_profiles()}


@pytest.mark.parametrize("profile", ["RTX 4090 24GB + 64GB RAM", "CPU only 32GB DDR5"])
def test_suggestions_are_recommended_readable_and_one_per_family(profile: str) -> None:
    entries = load_catalog()
    found = suggest(entries, PROFILES[profile], correction=None)
    assert 0 < len(found) <= 3
    assert len({s.entry.family for s in found}) == len(found)
    for suggestion in found:
        verdict = suggestion.verdict
        assert verdict.recommended
        assert verdict.fits
        assert verdict.tokens_per_s is not None
        assert verdict.tokens_per_s >= READABLE_TOKENS_PER_S
        assert suggestion.reason.startswith(f"{verdict.variant.quant}: {verdict.label}")
        assert verdict in verdicts_for(suggestion.entry, PROFILES[profile], None)
    sizes = [s.entry.params_b for s in found]
    assert sizes == sorted(sizes, reverse=True)  # the largest first


def test_without_a_bandwidth_figure_only_small_models_are_suggested() -> None:
    unknown = replace(PROFILES["CPU only 32GB DDR5"], ram_bandwidth_gbs=None)
    found = suggest(load_catalog(), unknown, correction=None)
    assert found
    for suggestion in found:
        assert suggestion.entry.active_params_b <= UNKNOWN_SPEED_MAX_ACTIVE_B
        assert "speed not estimated" in suggestion.reason
