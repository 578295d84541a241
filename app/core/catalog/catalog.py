"""The curated model catalog (``resources/catalog.json``) and the variants ``fit`` plans with.

Entries carry the architecture figures the estimator needs, so ``fit`` answers without the
file or the network. Without a tensor table the split of bytes between layers is estimated:
embedding and output rows at the variant's bits per weight, the rest spread evenly over the
layers, and MoE expert bytes from total vs active parameters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.catalog.estimator import ModelFacts
from app.core.catalog.quants import quant_quality
from app.core.catalog.recommend import Variant
from app.core.errors import ConfigError, UnknownModel
from app.core.storage.resources import resources_dir

CATALOG_FILE = "catalog.json"
CATALOG_BASIS = "estimated from the catalog's architecture figures"
_SWA_DEFAULT_PATTERN = {"gemma2": 2, "gemma3": 6, "gpt-oss": 2}


@dataclass(frozen=True)
class CatalogVariant:
    quant: str
    size_bytes: int | None
    size_basis: str | None


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    family: str
    repo: str | None
    params_b: float
    active_params_b: float
    license: str
    use: str
    arch: dict[str, Any]
    variants: tuple[CatalogVariant, ...]

    @property
    def is_moe(self) -> bool:
        return bool(self.arch.get("experts"))


def load_catalog(path: Path | None = None) -> tuple[CatalogEntry, ...]:
    file = path or resources_dir() / CATALOG_FILE
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return tuple(_entry(item) for item in data["models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the model catalog {file} cannot be read: {exc}") from exc


def _entry(item: dict[str, Any]) -> CatalogEntry:
    variants = tuple(
        CatalogVariant(str(v["quant"]), v.get("size_bytes"), v.get("size_basis"))
        for v in item["variants"]
    )
    return CatalogEntry(
        id=str(item["id"]),
        name=str(item["name"]),
        family=str(item["family"]),
        repo=item.get("repo"),
        params_b=float(item["params_b"]),
        active_params_b=float(item["active_params_b"]),
        license=str(item["license"]),
        use=str(item["use"]),
        arch=dict(item["arch"]),
        variants=variants,
    )


def _key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def find_entry(name: str, entries: tuple[CatalogEntry, ...]) -> CatalogEntry | None:
    """By id, display name or Hub repo (case- and punctuation-insensitive)."""
    wanted = _key(name)
    for entry in entries:
        if wanted in {_key(entry.id), _key(entry.name), _key(entry.repo or "")}:
            return entry
    return None


def get_entry(name: str, entries: tuple[CatalogEntry, ...]) -> CatalogEntry:
    entry = find_entry(name, entries)
    if entry is None:
        raise UnknownModel(f"{name!r} is not a GGUF file, a catalog model or a known repo")
    return entry


def variant_size(entry: CatalogEntry, variant: CatalogVariant) -> tuple[int, str]:
    """The variant's file size and where the figure comes from."""
    if variant.size_bytes is not None:
        return int(variant.size_bytes), variant.size_basis or "catalog"
    bpw = quant_quality(variant.quant).file_bpw or 16.0
    size = int(entry.params_b * 1e9 * bpw / 8 * 1.01)
    return size, f"estimated: {entry.params_b:g}B params × {bpw:g} bits per weight"


def facts_for_variant(entry: CatalogEntry, variant: CatalogVariant) -> ModelFacts:
    a = entry.arch
    size, _ = variant_size(entry, variant)
    layers = int(a["layers"])
    vocab, embd = int(a["vocab"]), int(a["embedding"])
    bpw = size * 8 / (entry.params_b * 1e9)
    embedding = int(vocab * embd * bpw / 8)
    tied = bool(a.get("tied_embeddings"))
    output = 0 if tied else embedding
    body = max(size - embedding - output, 0)
    experts = int(a.get("experts", 0))
    used = int(a.get("experts_used", 0))
    expert_share = 0.0
    if experts and used:
        # total = shared + E, active = shared + E·used/experts  =>  E = (total - active)/(1 - used/experts)
        expert_params = (entry.params_b - entry.active_params_b) / (1 - used / experts)
        expert_share = min(expert_params / entry.params_b, 0.98)
    per_layer = body // layers
    expert_per_layer = int(per_layer * expert_share)
    window = a.get("sliding_window")
    pattern = a.get("swa_pattern") or _SWA_DEFAULT_PATTERN.get(entry.family)
    swa = tuple(bool(window and pattern and il % pattern < pattern - 1) for il in range(layers))
    head_dim = int(a["head_dim"])
    return ModelFacts(
        architecture=entry.family,
        n_layers=layers,
        n_embd=embd,
        n_head=int(a["heads"]),
        head_count_kv=(int(a["kv_heads"]),) * layers,
        key_length=head_dim,
        value_length=head_dim,
        swa_layers=swa,
        sliding_window=int(window) if window else None,
        vocab_size=vocab,
        layer_bytes=(per_layer - expert_per_layer,) * layers,
        layer_expert_bytes=(expert_per_layer,) * layers,
        input_bytes=embedding,
        output_bytes=output,
        tied_output_bytes=embedding if tied else 0,
        total_params=int(entry.params_b * 1e9),
        active_params=int(entry.active_params_b * 1e9),
        n_expert=experts,
        n_expert_used=used,
        basis=CATALOG_BASIS,
    )


def catalog_variants(entry: CatalogEntry) -> list[Variant]:
    variants = []
    for cv in entry.variants:
        size, basis = variant_size(entry, cv)
        variants.append(Variant(cv.quant, facts_for_variant(entry, cv), size, basis))
    return variants
