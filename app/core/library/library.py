"""The model library: every GGUF from every source, and resolving what a user typed to one."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from app.core.errors import UnknownModel
from app.core.library.model import LibraryModel, ModelSource

log = logging.getLogger(__name__)


@runtime_checkable
class PreparingSource(Protocol):
    """A source whose models need a step before loading (the starter model is joined once)."""

    def prepare(self, model: LibraryModel) -> Path: ...


class ModelLibrary:
    def __init__(self, sources: Sequence[ModelSource]) -> None:
        self._sources = list(sources)

    def models(self) -> list[LibraryModel]:
        """Every model from every source; the first source to list a file wins."""
        seen: set[Path] = set()
        found: list[LibraryModel] = []
        for source in self._sources:
            try:
                listed = list(source.scan())
            except OSError as exc:  # an unreadable folder hides its models, nothing more
                log.warning("cannot scan %s: %s", source.name, exc)
                continue
            for model in listed:
                key = model.path.resolve() if model.path.exists() else model.path
                if key not in seen:
                    seen.add(key)
                    found.append(model)
        return found

    def resolve(self, name_or_path: str, allow_prefix: bool = True) -> LibraryModel:
        """A GGUF path, a library name, or a unique prefix of one (case-insensitive).

        ``allow_prefix=False`` is for destructive commands: a prefix then only lists the names
        it could mean, so a short word never picks a model to delete.
        """
        candidate = Path(name_or_path).expanduser()
        if candidate.suffix.lower() == ".gguf" or candidate.exists():
            if not candidate.is_file():
                raise UnknownModel(f"no model file at {candidate}")
            return LibraryModel(
                name=candidate.stem,
                path=candidate.resolve(),
                size_bytes=candidate.stat().st_size,
                source="file",
                owned=False,
            )
        models = self.models()
        wanted = name_or_path.lower()
        exact = [m for m in models if m.name.lower() == wanted]
        if exact:
            return exact[0]
        prefixed = [m for m in models if m.name.lower().startswith(wanted)]
        if prefixed and not allow_prefix:
            raise UnknownModel(
                f"no model is named exactly {name_or_path!r}; give the full name of one of: "
                + ", ".join(sorted(m.name for m in prefixed))
            )
        if len(prefixed) == 1:
            return prefixed[0]
        known = ", ".join(sorted(m.name for m in models)) or "none yet"
        if prefixed:
            raise UnknownModel(
                f"{name_or_path!r} matches several models: "
                + ", ".join(sorted(m.name for m in prefixed))
            )
        raise UnknownModel(f"no model named {name_or_path!r}; models in the library: {known}")

    def local_path(self, model: LibraryModel) -> Path:
        """The file to hand to llama.cpp, after any preparation its source needs."""
        for source in self._sources:
            if source.name == model.source and isinstance(source, PreparingSource):
                return source.prepare(model)
        return model.path
