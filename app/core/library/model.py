"""What the library knows of one model on disk, and the protocol of a place models are found."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class LibraryModel:
    name: str  # the short, stable name users type and the API serves as the model id
    path: Path  # the GGUF to load (the first part of a split model)
    size_bytes: int  # all parts together
    source: str  # "starter", "homefire", "huggingface-cache", "lm-studio", "ollama", "folder"
    owned: bool  # Homefire put it there and may delete it
    parts: tuple[Path, ...] = ()  # every file of a split model, in order; () for one file
    quant: str | None = None  # "Q4_K_M", "IQ2_XXS", "F16", ...
    architecture: str | None = None
    repo_id: str | None = None  # the Hub repo it came from, when known


class ModelSource(Protocol):
    """A place GGUFs are found. ``scan`` must not raise for unreadable entries: it skips them."""

    @property
    def name(self) -> str: ...

    def scan(self) -> Iterable[LibraryModel]: ...
