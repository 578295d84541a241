"""GGUFs Ollama pulled, found through its manifests: the model layer's digest names the blob.

``<root>/manifests/<host>/<namespace>/<name>/<tag>`` is JSON whose layer of media type
``application/vnd.ollama.image.model`` has ``digest: sha256:<hex>``; the bytes are
``<root>/blobs/sha256-<hex>``. Root: ``OLLAMA_MODELS`` (Ollama's own variable), else
``~/.ollama/models``. Digests are checked to be exactly ``sha256:<64 hex>`` before they touch a
path (the Probllama path traversal, CVE-2024-37032).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from app.core.library.model import LibraryModel
from app.core.library.sources.gguf_facts import read_facts

log = logging.getLogger(__name__)

MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
DEFAULT_HOST = "registry.ollama.ai"
_DIGEST_RE = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
_MAX_MANIFEST_BYTES = 1 << 20


def ollama_models_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("OLLAMA_MODELS"):
        return Path(env["OLLAMA_MODELS"]).expanduser()
    return Path(env.get("HOME", "~")).expanduser() / ".ollama" / "models"


def blob_path(root: Path, digest: str) -> Path | None:
    """``blobs/sha256-<hex>`` for a well-formed digest, None for anything else."""
    match = _DIGEST_RE.match(digest)
    return root / "blobs" / f"sha256-{match[1]}" if match else None


class OllamaSource:
    name = "ollama"

    def __init__(self, root: Path) -> None:
        self._root = root

    @property
    def root(self) -> Path:
        return self._root

    def scan(self) -> Iterable[LibraryModel]:
        manifests = self._root / "manifests"
        if not manifests.is_dir():
            return []
        found = []
        for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
            model = self._model_for(manifest, manifest.relative_to(manifests).parts)
            if model is not None:
                found.append(model)
        return found

    def _model_for(self, manifest: Path, parts: tuple[str, ...]) -> LibraryModel | None:
        if len(parts) != 4:  # host / namespace / name / tag
            return None
        blob = self._model_blob(manifest)
        if blob is None or not blob.is_file():
            return None
        facts = read_facts(blob)
        if facts is None:
            return None
        host, namespace, model, tag = parts
        if host == DEFAULT_HOST:
            name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        else:
            name = f"{host}/{namespace}/{model}:{tag}"
        return LibraryModel(
            name=name,
            path=blob,
            size_bytes=blob.stat().st_size,
            source=self.name,
            owned=False,
            quant=facts.quant,
            architecture=facts.architecture,
            repo_id=f"{namespace}/{model}" if host == "hf.co" else None,
        )

    def _model_blob(self, manifest: Path) -> Path | None:
        try:
            if manifest.stat().st_size > _MAX_MANIFEST_BYTES:
                return None
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.info("skipping Ollama manifest %s: %s", manifest, exc)
            return None
        layers = data.get("layers") if isinstance(data, dict) else None
        for layer in layers if isinstance(layers, list) else []:
            if isinstance(layer, dict) and layer.get("mediaType") == MODEL_MEDIA_TYPE:
                digest = layer.get("digest")
                path = blob_path(self._root, digest) if isinstance(digest, str) else None
                if path is None:
                    log.warning("Ollama manifest %s has a malformed digest; skipped", manifest)
                return path
        return None
