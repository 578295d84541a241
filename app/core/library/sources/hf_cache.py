"""GGUFs in a Hugging Face cache folder: ``models--org--name/snapshots/<rev>/<file>`` -> blobs.

Serves two places with one layout: the user's Hugging Face cache (huggingface_hub, llama.cpp's
``-hf``, LM Studio imports) and Homefire's own models folder, which is a cache of the same shape.
A snapshot entry whose blob is missing (an unfinished download elsewhere) is not listed, nor is a
split model with a shard missing; ``.part`` / ``.incomplete`` blobs are never reachable from
``snapshots/``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from app.core.catalog.hub import is_commit_hash
from app.core.catalog.quants import group_variant_files
from app.core.library.model import LibraryModel
from app.core.library.sources.gguf_facts import read_facts

log = logging.getLogger(__name__)

# A ref holds 40 hex characters and a newline; reading more could only be an attack on memory.
REF_READ_LIMIT = 128


def hf_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where huggingface_hub keeps its cache: ``HF_HUB_CACHE``, else ``HF_HOME/hub``."""
    env = os.environ if environ is None else environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    home = env.get("HF_HOME") or str(Path(env.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface")
    return Path(home).expanduser() / "hub"


class HfCacheSource:
    """One Hugging Face cache directory."""

    def __init__(self, root: Path, name: str = "huggingface-cache", owned: bool = False) -> None:
        self._root = root
        self._name = name
        self._owned = owned

    @property
    def name(self) -> str:
        return self._name

    @property
    def root(self) -> Path:
        return self._root

    def scan(self) -> Iterable[LibraryModel]:
        if not self._root.is_dir():
            return []
        found: list[LibraryModel] = []
        for repo_dir in sorted(self._root.glob("models--*--*")):
            repo_id = repo_dir.name.removeprefix("models--").replace("--", "/", 1)
            snapshot = _current_snapshot(repo_dir)
            if snapshot is not None:
                found.extend(self._models_in(snapshot, repo_id))
        return found

    def _models_in(self, snapshot: Path, repo_id: str) -> Iterator[LibraryModel]:
        present = {
            p.relative_to(snapshot).as_posix(): p
            for p in snapshot.rglob("*.gguf")
            if _blob_complete(p)
        }
        for variant in group_variant_files(sorted(present)):
            if not variant.complete:
                continue
            parts = tuple(present[f] for f in variant.files)
            facts = read_facts(parts[0])
            if facts is None:
                continue
            quant = facts.quant or variant.quant
            label = quant or Path(variant.key).name.removesuffix(".gguf")
            yield LibraryModel(
                name=f"{repo_id}:{label}",
                path=parts[0],
                size_bytes=sum(p.stat().st_size for p in parts),
                source=self._name,
                owned=self._owned,
                parts=parts if len(parts) > 1 else (),
                quant=quant,
                architecture=facts.architecture,
                repo_id=repo_id,
            )


def _current_snapshot(repo_dir: Path) -> Path | None:
    """The snapshot ``refs/main`` points at, else the most recently written one.

    ``refs/main`` is trusted only when it holds a 40-hex commit: anything else (``../..``, an
    absolute path, a huge file) would name a folder outside the cache, so it is ignored.
    """
    snapshots = repo_dir / "snapshots"
    try:
        with (repo_dir / "refs" / "main").open("rb") as handle:
            commit = handle.read(REF_READ_LIMIT).decode("ascii", "replace").strip()
    except OSError:
        commit = ""
    if is_commit_hash(commit) and (snapshots / commit).is_dir():
        return snapshots / commit
    candidates = [p for p in snapshots.glob("*") if p.is_dir()] if snapshots.is_dir() else []
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def _blob_complete(path: Path) -> bool:
    """The snapshot entry leads to a finished blob (a dangling link is an unfinished download)."""
    try:
        return path.resolve(strict=True).is_file() and not path.resolve().name.endswith(
            (".part", ".incomplete")
        )
    except OSError:
        return False
