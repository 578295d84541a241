"""Copies of a Hub file that another tool already has, so a pull never makes a second copy.

Checked places: the Hugging Face cache (content-addressed: the blob is named by its sha256),
Ollama's blobs (``sha256-<hex>``, the same hash as the Hub's LFS oid) and LM Studio's
``<publisher>/<repo>/<file>``. A match by name and size is then hashed: a same-size file is not
a verified file (Ollama learnt this, commit 5e139a0f4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from app.core.catalog.hub import HubFile
from app.core.downloads.cache_layout import repo_folder_name
from app.core.library.sources.ollama import blob_path

_CHUNK = 8 << 20


class OtherToolsCopies:
    def __init__(
        self, hf_cache: Path | None, ollama_root: Path | None, lm_studio_roots: Sequence[Path]
    ) -> None:
        self._hf_cache = hf_cache
        self._ollama_root = ollama_root
        self._lm_studio_roots = list(lm_studio_roots)

    def find(self, repo_id: str, files: Sequence[HubFile]) -> tuple[str, tuple[Path, ...]] | None:
        if not files or any(f.sha256 is None for f in files):
            return None
        for where, paths in (
            ("the Hugging Face cache", self._in_hf_cache(repo_id, files)),
            ("Ollama", self._in_ollama(files)),
            ("LM Studio", self._in_lm_studio(repo_id, files)),
        ):
            if paths is not None and all(
                _verified(p, f) for p, f in zip(paths, files, strict=True)
            ):
                return where, paths
        return None

    def _in_hf_cache(self, repo_id: str, files: Sequence[HubFile]) -> tuple[Path, ...] | None:
        if self._hf_cache is None:
            return None
        snapshots = self._hf_cache / repo_folder_name(repo_id) / "snapshots"
        found = []
        for hub_file in files:
            match = next(
                (
                    s / hub_file.path
                    for s in sorted(snapshots.glob("*"))
                    if (s / hub_file.path).exists()
                    and (s / hub_file.path).resolve().name == hub_file.sha256
                ),
                None,
            )
            if match is None:
                return None
            found.append(match)
        return tuple(found)

    def _in_ollama(self, files: Sequence[HubFile]) -> tuple[Path, ...] | None:
        if self._ollama_root is None or len(files) != 1:
            return None  # Ollama keeps one blob per model; it cannot hold a split GGUF's shards
        blob = blob_path(self._ollama_root, f"sha256:{files[0].sha256}")
        return (blob,) if blob is not None and blob.is_file() else None

    def _in_lm_studio(self, repo_id: str, files: Sequence[HubFile]) -> tuple[Path, ...] | None:
        for root in self._lm_studio_roots:
            paths = tuple(root / repo_id / Path(f.path).name for f in files)
            if all(p.is_file() for p in paths):
                return paths
        return None


def _verified(path: Path, hub_file: HubFile) -> bool:
    try:
        if path.stat().st_size != hub_file.size:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(_CHUNK):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == hub_file.sha256
