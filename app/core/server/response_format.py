"""``response_format`` (OpenAI) and ``format`` (Ollama) as output grammars: enforced or refused."""

from __future__ import annotations

from typing import Any

from app.core.engine.backend import grammar_from_json_schema
from app.core.errors import UnsupportedRequest
from app.core.server.errors import ApiError

_ANY_OBJECT: dict[str, Any] = {"type": "object"}


def _grammar(schema: Any, param: str) -> str:
    try:
        return grammar_from_json_schema(schema)
    except UnsupportedRequest as exc:
        raise ApiError(400, exc.user_message, code="unsupported_schema", param=param) from exc


def openai_format_grammar(response_format: Any) -> str | None:
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise ApiError(400, "response_format must be an object", param="response_format")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        # llama-cpp-python's own server took a schema here; honour it when one is given.
        return _grammar(response_format.get("schema", _ANY_OBJECT), "response_format")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            raise ApiError(
                400, "response_format.json_schema.schema is required", param="response_format"
            )
        return _grammar(schema, "response_format.json_schema.schema")
    raise ApiError(400, f"response_format type {kind!r} is not supported", param="response_format")


def ollama_format_grammar(fmt: Any) -> str | None:
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return _grammar(_ANY_OBJECT, "format")
    if isinstance(fmt, dict):
        return _grammar(fmt, "format")
    raise ApiError(400, 'format must be "json" or a JSON schema', param="format")
