"""What the pool's loaded models look like to a person: totals, idle times, expiry, choices.

The app's Library page, status bar and chat model picker show these words; a CLI listing would
show the same ones. Each figure says whether it was measured or estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.core.library.model import LibraryModel
from app.core.pool.pool import LoadedModel
from app.core.sizes import format_size


@dataclass(frozen=True)
class ModelChoice:
    """One entry of a conversation's model picker."""

    name: str
    loaded: bool


def memory_text(model: LoadedModel) -> str:
    basis = "measured" if model.memory_measured else "estimated"
    return f"{format_size(model.memory_bytes)} ({basis})"


def pool_text(models: Sequence[LoadedModel]) -> str:
    """``2 models loaded · 1.3 GB (measured)``; a total with any estimate in it is estimated."""
    if not models:
        return "No model loaded"
    total = sum(m.memory_bytes for m in models)
    basis = "measured" if all(m.memory_measured for m in models) else "estimated"
    count = f"{len(models)} model{'s' if len(models) != 1 else ''} loaded"
    return f"{count} · {format_size(total)} ({basis})"


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min 20 s``, ``2 h 5 min``: whole units, the two largest."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def idle_text(model: LoadedModel, now: datetime) -> str:
    if model.busy:
        return "in use"
    return f"idle {duration_text((now - model.last_used).total_seconds())}"


def expiry_text(model: LoadedModel, now: datetime) -> str:
    """When the model unloads by itself, if it does."""
    if model.pinned:
        return "pinned: stays loaded"
    if model.busy:
        return "after its requests end"
    if model.expires_at is None:
        return "when unloaded or memory is needed"
    return f"in {duration_text((model.expires_at - now).total_seconds())}"


def model_choices(
    loaded: Sequence[LoadedModel], library: Sequence[LibraryModel], load_on_request: bool
) -> list[ModelChoice]:
    """Loaded models first (most recently used first), then, when a model may be loaded on
    request, every other library model by name."""
    choices = [ModelChoice(m.name, loaded=True) for m in loaded]
    if load_on_request:
        taken = {m.name for m in loaded}
        rest = sorted({m.name for m in library} - taken, key=str.lower)
        choices.extend(ModelChoice(name, loaded=False) for name in rest)
    return choices
