"""What a model reports before it is loaded: a ``ModelInfo`` read from its GGUF header alone.

Clients (Copilot, Continue) ask for the details of every model a server lists; loading each one
to answer would load the whole library in turn. Capabilities follow the same rules a load
applies: the FIM tokens the loader would find, and the chat template probed by rendering it in
the same sandboxed child process, so a model reports the same before and after its load.
"""

from __future__ import annotations

from pathlib import Path

from app.core.catalog.gguf_header import GgufHeader, MetaValue
from app.core.engine.chat_template import (
    TRANSCRIPT_FALLBACK,
    ChatTemplate,
    TemplateRenderer,
    probe_template,
)
from app.core.engine.result import ModelInfo


def _as_text(value: MetaValue) -> str | None:
    """A scalar as llama.cpp prints metadata (arrays are left out, as the loaded model's are)."""
    if isinstance(value, tuple):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def header_metadata(header: GgufHeader) -> dict[str, str]:
    values = {
        key: text for key, value in header.metadata.items() if (text := _as_text(value)) is not None
    }
    if header.chat_template:
        values["tokenizer.chat_template"] = header.chat_template
    return values


def info_from_header(
    model_id: str, path: Path, header: GgufHeader, n_ctx: int, templates: TemplateRenderer
) -> ModelInfo:
    """The model as it would load at context ``n_ctx``; nothing measured (``load_s`` 0, no
    memory growth). The template renders without BOS/EOS texts, which the probe never needs."""
    template = TRANSCRIPT_FALLBACK  # what a load falls back to without a template
    if header.chat_template:
        template = ChatTemplate(source=header.chat_template, bos_token="", eos_token="")
    tools_ok, thinking = probe_template(templates, template)
    return ModelInfo(
        model_id=model_id,
        path=path,
        n_ctx=n_ctx,
        n_ctx_train=header.context_length or 0,
        architecture=header.architecture,
        n_params=header.parameter_count,
        size_bytes=header.file_size or 0,
        has_chat_template=template.origin == "gguf",
        template_source=template.origin,
        load_s=0.0,
        rss_growth_bytes=None,
        supports_tools=tools_ok,
        supports_fim=header.supports_fim,
        opens_thinking=thinking,
        n_vocab=header.vocab_size or 0,
        metadata=header_metadata(header),
    )
