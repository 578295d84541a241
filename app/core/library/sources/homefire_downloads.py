"""Homefire's own downloads: its models folder, laid out as a Hugging Face cache."""

from __future__ import annotations

from pathlib import Path

from app.core.library.sources.hf_cache import HfCacheSource


def homefire_downloads(models_dir: Path) -> HfCacheSource:
    """The models Homefire fetched; the only ones ``homefire rm`` deletes without ``--force``."""
    return HfCacheSource(models_dir, name="homefire", owned=True)
