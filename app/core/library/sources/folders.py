"""GGUFs in folders the user added (settings ``model_folders``), found recursively."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from app.core.catalog.quants import group_variant_files
from app.core.library.model import LibraryModel
from app.core.library.sources.gguf_facts import read_facts

_MAX_DEPTH = 4  # deep enough for publisher/repo/quant trees, shallow enough for a home folder


class FolderSource:
    name = "folder"

    def __init__(self, folders: list[Path]) -> None:
        self._folders = folders

    def scan(self) -> Iterable[LibraryModel]:
        found: list[LibraryModel] = []
        for folder in self._folders:
            if folder.is_dir():
                found.extend(self._models_in(folder))
        return found

    def _models_in(self, folder: Path) -> list[LibraryModel]:
        files = {
            p.relative_to(folder).as_posix(): p
            for p in folder.rglob("*.gguf")
            if p.is_file() and len(p.relative_to(folder).parts) <= _MAX_DEPTH
        }
        models = []
        for variant in group_variant_files(sorted(files)):
            if not variant.complete:
                continue
            parts = tuple(files[f] for f in variant.files)
            facts = read_facts(parts[0])
            if facts is None:
                continue
            stem = Path(variant.key).name.removesuffix(".gguf")
            models.append(
                LibraryModel(
                    name=stem,
                    path=parts[0],
                    size_bytes=sum(p.stat().st_size for p in parts),
                    source=self.name,
                    owned=False,
                    parts=parts if len(parts) > 1 else (),
                    quant=facts.quant or variant.quant,
                    architecture=facts.architecture,
                )
            )
        return models
