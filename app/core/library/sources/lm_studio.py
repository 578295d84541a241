"""GGUFs in LM Studio's models folder: ``<root>/<publisher>/<repo>/*.gguf``.

LM Studio 0.3+ keeps them in ``~/.lmstudio/models``; older versions in
``~/.cache/lm-studio/models``. ``HOMEFIRE_LMSTUDIO_MODELS`` overrides both (tests, unusual setups).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from app.core.catalog.quants import group_variant_files
from app.core.library.model import LibraryModel
from app.core.library.sources.gguf_facts import read_facts

ENV_OVERRIDE = "HOMEFIRE_LMSTUDIO_MODELS"


def lm_studio_dirs(environ: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if environ is None else environ
    if env.get(ENV_OVERRIDE):
        return [Path(p).expanduser() for p in env[ENV_OVERRIDE].split(os.pathsep) if p]
    home = Path(env.get("HOME", "~")).expanduser()
    return [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"]


class LmStudioSource:
    name = "lm-studio"

    def __init__(self, roots: list[Path]) -> None:
        self._roots = roots

    @property
    def roots(self) -> list[Path]:
        return self._roots

    def scan(self) -> Iterable[LibraryModel]:
        found: list[LibraryModel] = []
        for root in self._roots:
            if not root.is_dir():
                continue
            for repo_dir in sorted(p for p in root.glob("*/*") if p.is_dir()):
                found.extend(self._models_in(repo_dir, f"{repo_dir.parent.name}/{repo_dir.name}"))
        return found

    def _models_in(self, repo_dir: Path, repo_id: str) -> list[LibraryModel]:
        names = sorted(p.name for p in repo_dir.glob("*.gguf") if p.is_file())
        models = []
        for variant in group_variant_files(names):
            if not variant.complete:
                continue
            parts = tuple(repo_dir / f for f in variant.files)
            facts = read_facts(parts[0])
            if facts is None:
                continue
            quant = facts.quant or variant.quant
            label = quant or variant.key.removesuffix(".gguf")
            models.append(
                LibraryModel(
                    name=f"{repo_id}:{label}",
                    path=parts[0],
                    size_bytes=sum(p.stat().st_size for p in parts),
                    source=self.name,
                    owned=False,
                    parts=parts if len(parts) > 1 else (),
                    quant=quant,
                    architecture=facts.architecture,
                    repo_id=repo_id,
                )
            )
        return models
