"""Two or three catalog models that fit this machine well, each with the reason."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.catalog.calibration import Correction
from app.core.catalog.catalog import CatalogEntry, catalog_variants
from app.core.catalog.recommend import READABLE_TOKENS_PER_S, Verdict, recommend
from app.core.hardware.profile import HardwareProfile

SUGGESTION_CTX = 8192
# With no memory bandwidth known (so no speed estimate), models up to this many active
# parameters are suggested: they decode at a readable pace on any recent CPU.
UNKNOWN_SPEED_MAX_ACTIVE_B = 4.5


@dataclass(frozen=True)
class Suggestion:
    entry: CatalogEntry
    verdict: Verdict

    @property
    def reason(self) -> str:
        v = self.verdict
        speed = (
            f", about {v.tokens_per_s:.0f} tokens/s (estimated)"
            if v.tokens_per_s
            else ", speed not estimated (memory bandwidth unknown)"
        )
        return f"{v.variant.quant}: {v.label}{speed}, {v.quality.band} quality loss"


def verdicts_for(
    entry: CatalogEntry,
    profile: HardwareProfile,
    correction: Correction | None,
    n_ctx: int = SUGGESTION_CTX,
) -> list[Verdict]:
    return recommend(profile, catalog_variants(entry), n_ctx, correction=correction)


def suggest(
    entries: tuple[CatalogEntry, ...],
    profile: HardwareProfile,
    correction: Correction | None,
    count: int = 3,
) -> list[Suggestion]:
    """The largest models whose recommended quant still reads comfortably, one per family."""
    found: list[Suggestion] = []
    for entry in entries:
        pick = next((v for v in verdicts_for(entry, profile, correction) if v.recommended), None)
        if pick is None or not _readable(entry, pick):
            continue
        found.append(Suggestion(entry, pick))
    found.sort(key=lambda s: (-s.entry.params_b, s.verdict.quality.rank_loss))
    chosen: list[Suggestion] = []
    families: set[str] = set()
    for suggestion in found:
        if suggestion.entry.family not in families:
            families.add(suggestion.entry.family)
            chosen.append(suggestion)
        if len(chosen) == count:
            break
    return chosen


def _readable(entry: CatalogEntry, pick: Verdict) -> bool:
    if pick.tokens_per_s is not None:
        return pick.tokens_per_s >= READABLE_TOKENS_PER_S
    return entry.active_params_b <= UNKNOWN_SPEED_MAX_ACTIVE_B
