"""Places GGUFs are found besides the starter model: one module per place.

``default_sources`` builds them all for a Homefire instance; each location can be moved with an
environment variable (``HF_HUB_CACHE``/``HF_HOME``, ``OLLAMA_MODELS``,
``HOMEFIRE_LMSTUDIO_MODELS``) or, for user folders, the ``model_folders`` setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from app.core.library.library import ModelLibrary
from app.core.library.model import ModelSource
from app.core.library.sources.existing_copies import OtherToolsCopies
from app.core.library.sources.folders import FolderSource
from app.core.library.sources.hf_cache import HfCacheSource, hf_cache_dir
from app.core.library.sources.homefire_downloads import homefire_downloads
from app.core.library.sources.lm_studio import LmStudioSource, lm_studio_dirs
from app.core.library.sources.ollama import OllamaSource, ollama_models_dir
from app.core.library.starter import StarterSource
from app.core.storage.paths import AppPaths
from app.core.storage.settings import Settings


def default_sources(
    models_dir: Path, model_folders: list[str], environ: Mapping[str, str] | None = None
) -> list[ModelSource]:
    """Homefire's downloads first (so its names win), then the other tools', then user folders."""
    env = os.environ if environ is None else environ
    return [
        homefire_downloads(models_dir),
        HfCacheSource(hf_cache_dir(env)),
        LmStudioSource(lm_studio_dirs(env)),
        OllamaSource(ollama_models_dir(env)),
        FolderSource([Path(f).expanduser() for f in model_folders]),
    ]


def build_library(
    paths: AppPaths, settings: Settings, environ: Mapping[str, str] | None = None
) -> ModelLibrary:
    """Every place: Homefire's downloads, the starter model, other tools, user folders."""
    sources = default_sources(paths.models_dir, settings.model_folders, environ)
    sources.insert(1, StarterSource(paths.models_dir / "starter"))
    return ModelLibrary(sources)


def other_tools_copies(environ: Mapping[str, str] | None = None) -> OtherToolsCopies:
    env = os.environ if environ is None else environ
    return OtherToolsCopies(hf_cache_dir(env), ollama_models_dir(env), lm_studio_dirs(env))


__all__ = ["build_library", "default_sources", "other_tools_copies"]
