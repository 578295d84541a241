"""Where downloaded files land: the Hugging Face cache layout, so other tools find them.

Homefire's models folder *is* a Hugging Face cache directory::

    <models>/models--<org>--<name>/blobs/<sha256>            verified content
    <models>/models--<org>--<name>/blobs/<sha256>.part       bytes still arriving (never listed)
    <models>/models--<org>--<name>/snapshots/<commit>/<file> relative symlink to the blob
    <models>/models--<org>--<name>/refs/main                 the commit ``main`` pointed at

so ``huggingface_hub`` reads it with ``cache_dir=<models>`` (or ``HF_HUB_CACHE=<models>``) and
llama.cpp opens the snapshot path. Every path is built from checked names and then verified to
be inside the models folder before anything is created.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from app.core.catalog.hub import (
    is_commit_hash,
    is_sha256,
    validate_repo_filename,
    validate_repo_id,
)
from app.core.errors import UnsafeName
from app.core.storage.atomic import write_atomic

PART_SUFFIX = ".part"


def repo_folder_name(repo_id: str) -> str:
    """huggingface_hub's ``repo_folder_name`` for models: ``models--org--name``."""
    return "models--" + validate_repo_id(repo_id).replace("/", "--")


@dataclass(frozen=True)
class RepoCache:
    """One repo's folder inside a cache directory."""

    root: Path  # the cache directory (Homefire's models folder)
    repo_id: str

    @property
    def folder(self) -> Path:
        return self._inside(self.root / repo_folder_name(self.repo_id))

    def blob(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise UnsafeName(f"not a sha256 digest: {sha256!r}")
        return self._inside(self.folder / "blobs" / sha256)

    def part(self, sha256: str) -> Path:
        blob = self.blob(sha256)
        return blob.with_name(blob.name + PART_SUFFIX)

    def snapshot_file(self, commit: str, filename: str) -> Path:
        if not is_commit_hash(commit):
            raise UnsafeName(f"not a commit hash: {commit!r}")
        validate_repo_filename(filename)
        return self._inside(self.folder / "snapshots" / commit / filename)

    def ref(self, name: str) -> Path:
        validate_repo_filename(name)
        return self._inside(self.folder / "refs" / name)

    def link_snapshot(self, commit: str, filename: str, sha256: str) -> Path:
        """Point ``snapshots/<commit>/<file>`` at the blob (relative symlink, else hard link)."""
        target = self.snapshot_file(commit, filename)
        blob = self.blob(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.link")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        try:
            tmp.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:
            # Windows without symlink rights: a hard link still shares the bytes.
            os.link(blob, tmp)
        os.replace(tmp, target)
        return target

    def write_ref(self, name: str, commit: str) -> None:
        if not is_commit_hash(commit):
            raise UnsafeName(f"not a commit hash: {commit!r}")
        write_atomic(self.ref(name), commit.encode())

    def _inside(self, path: Path) -> Path:
        # Defence in depth: names were validated, but the resolved path must still be ours.
        root = self.root.resolve()
        resolved = path.resolve() if path.exists() else path.parent.resolve() / path.name
        if not resolved.is_relative_to(root):
            raise UnsafeName(f"{path} would be outside the models folder {root}")
        return path
