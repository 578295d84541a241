"""What a client's model name means: one library model, or a clear error listing candidates.

Clients send the names they were configured with: Homefire's library names, a Hub
``repo:quant`` (as llama-server and LM Studio show them), Ollama's ``name:tag`` (its own models,
which the library reads from Ollama's store, with ``:latest`` implied), a file name, or a
prefix short enough to type. The order below makes the most specific reading win.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.core.errors import AmbiguousModel, UnknownModel
from app.core.library.model import LibraryModel

# How many names an "unknown model" message lists, so a large library stays one readable line.
SHOWN_NAMES = 8
OLLAMA_DEFAULT_TAG = ":latest"


def _key(name: str) -> str:
    return name.strip().lower()


def resolve_name(
    requested: str, models: Sequence[LibraryModel], loaded: Sequence[str] = ()
) -> LibraryModel:
    """The one library model ``requested`` names.

    Order: exact library name; ``repo:quant``; Ollama ``name:tag`` (``name`` alone means
    ``name:latest``); file name or stem; unique prefix of a library name. Raises
    ``AmbiguousModel`` naming the candidates, or ``UnknownModel`` naming a few that exist
    (the ``loaded`` ones first: a model loaded from a file may not be in the library).
    """
    wanted = _key(requested)
    if not wanted:
        raise UnknownModel("no model named; pass a model name")
    stages = (
        lambda m: _key(m.name) == wanted,
        lambda m: bool(m.repo_id and m.quant) and f"{m.repo_id}:{m.quant}".lower() == wanted,
        lambda m: (
            m.source == "ollama"
            and _key(m.name) == (wanted if ":" in wanted else wanted + OLLAMA_DEFAULT_TAG)
        ),
        lambda m: wanted in (m.path.name.lower(), m.path.stem.lower()),
        lambda m: _key(m.name).startswith(wanted),
    )
    for matches in stages:
        found = [m for m in models if matches(m)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = sorted({m.name for m in found})
            if len(names) == 1:  # the same name from two places: the first source wins
                return found[0]
            raise AmbiguousModel(requested, names)
    names = list(dict.fromkeys([*loaded, *sorted(m.name for m in models)]))
    shown = names[:SHOWN_NAMES]
    more = len(names) - len(shown)
    listing = ", ".join(shown) + (f" and {more} more" if more > 0 else "") if shown else "none"
    raise UnknownModel(f"no model named {requested!r}; models available: {listing}")
