"""How a model looks to Ollama clients: /api/tags, /api/show and /api/ps entries.

Copilot, Roo, Zed and Continue read these to decide what a model can do, so every field is
derived from the model, never assumed: ``capabilities`` lists ``tools`` only when the chat
template renders tools, ``insert`` only when the vocabulary has FIM tokens; the context length
is the one loaded. A model not loaded is described from its GGUF header by the same rules
(``ModelPool.describe``), with the context a load would open.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import gguf

from app.core.engine.result import ModelInfo
from app.core.library.model import LibraryModel
from app.core.pool.pool import LoadedModel

# Ollama's /api/version. Copilot Chat refuses anything below 0.6.4.
OLLAMA_COMPAT_VERSION = "0.9.0"
# How the FIM layout reads in Ollama's Go template syntax; Continue looks for ".Suffix".
_FIM_TEMPLATE = (
    "{{- if .Suffix }}<FIM_PREFIX>{{ .Prompt }}<FIM_SUFFIX>{{ .Suffix }}<FIM_MIDDLE>\n"
    "{{- else }}{{ .Prompt }}{{ end }}"
)


def iso_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _modified_at(info: ModelInfo) -> str:
    try:
        return iso_time(datetime.fromtimestamp(info.path.stat().st_mtime, UTC))
    except OSError:
        return iso_time(datetime.now(UTC))


def _digest(info: ModelInfo) -> str:
    # An identifier, not a content hash: hashing a multi-GB file per request would be absurd.
    try:
        stamp = info.path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return hashlib.sha256(f"{info.path}:{info.size_bytes}:{stamp}".encode()).hexdigest()


def _parameter_size(n_params: int | None) -> str:
    if not n_params:
        return "unknown"
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n_params >= scale:
            return f"{n_params / scale:.2f}{unit}"
    return str(n_params)


def _quantization(info: ModelInfo) -> str:
    raw = info.metadata.get("general.file_type")
    try:
        return gguf.LlamaFileType(int(raw or "")).name.removeprefix("MOSTLY_")
    except ValueError:
        return "unknown"


def details(info: ModelInfo) -> dict[str, Any]:
    family = info.architecture or "unknown"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": _parameter_size(info.n_params),
        "quantization_level": _quantization(info),
    }


def tag_entry(info: ModelInfo) -> dict[str, Any]:
    return {
        "name": info.model_id,
        "model": info.model_id,
        "modified_at": _modified_at(info),
        "size": info.size_bytes,
        "digest": _digest(info),
        "details": details(info),
    }


def library_tag_entry(model: LibraryModel) -> dict[str, Any]:
    """A library model that is not loaded: what its file and the library know, nothing assumed."""
    try:
        modified = iso_time(datetime.fromtimestamp(model.path.stat().st_mtime, UTC))
    except OSError:
        modified = iso_time(datetime.now(UTC))
    family = model.architecture or "unknown"
    digest = hashlib.sha256(f"{model.path}:{model.size_bytes}".encode()).hexdigest()
    return {
        "name": model.name,
        "model": model.name,
        "modified_at": modified,
        "size": model.size_bytes,
        "digest": digest,
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "unknown",
            "quantization_level": model.quant or "unknown",
        },
    }


def running_entry(loaded: LoadedModel) -> dict[str, Any]:
    """An /api/ps entry: ``size`` is the memory measured over the load (the estimate until it
    could be measured), ``expires_at`` when the idle model will be unloaded."""
    info = loaded.info
    if info.n_gpu_layers == 0:
        vram = 0
    else:
        layers = int(info.metadata.get(f"{info.architecture}.block_count", "0") or 0)
        share = 1.0 if info.n_gpu_layers < 0 or not layers else min(1.0, info.n_gpu_layers / layers)
        vram = int(info.size_bytes * share)  # the weights' share on the GPU; KV not counted
    # Busy, pinned or kept forever: no expiry yet; Ollama shows a far date for "never".
    expires = loaded.expires_at or datetime.now(UTC) + timedelta(days=365 * 100)
    return {
        **tag_entry(info),
        "size": max(loaded.memory_bytes, vram),
        "expires_at": iso_time(expires),
        "size_vram": vram,
        "context_length": info.n_ctx,
    }


def capabilities(info: ModelInfo) -> list[str]:
    found = ["completion"]
    if info.supports_tools:
        found.append("tools")
    if info.supports_fim:
        found.append("insert")
    if info.opens_thinking or "<think>" in info.metadata.get("tokenizer.chat_template", ""):
        found.append("thinking")
    return found


def _typed(value: str) -> int | float | str | bool:
    if value in ("true", "false"):
        return value == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def model_info(info: ModelInfo) -> dict[str, Any]:
    values: dict[str, Any] = {
        key: _typed(value)
        for key, value in info.metadata.items()
        if not key.startswith("tokenizer.")
    }
    arch = info.architecture or "unknown"
    values["general.architecture"] = arch
    values["general.parameter_count"] = info.n_params or 0
    # The loaded window, which is what a client can use (not the trained maximum).
    values[f"{arch}.context_length"] = info.n_ctx
    return values


def show_entry(info: ModelInfo) -> dict[str, Any]:
    template = info.metadata.get("tokenizer.chat_template", "")
    if info.supports_fim:
        template = f"{_FIM_TEMPLATE}\n{template}"
    return {
        "license": info.metadata.get("general.license", ""),
        "modelfile": f"# Served by Homefire\nFROM {info.path}\nPARAMETER num_ctx {info.n_ctx}\n",
        "parameters": f"num_ctx                        {info.n_ctx}",
        "template": template,
        "details": details(info),
        "model_info": model_info(info),
        "capabilities": capabilities(info),
        "modified_at": _modified_at(info),
    }
