"""``response_format`` (OpenAI chat), ``text.format`` (OpenAI Responses) and ``format``
(Ollama) as output grammars: enforced or refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from app.core.engine.backend import grammar_from_json_schema
from app.core.errors import GrammarRefused, UnsupportedRequest
from app.core.server.errors import ApiError

_ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Converting a schema the grammar limits admit takes milliseconds; this only backstops a
# converter that is slow in a way the limits did not foresee.
CONVERSION_DEADLINE_S = 10.0

T = TypeVar("T")


async def off_the_loop(work: Callable[[], T]) -> T:
    """Run schema-to-grammar conversion (CPU work in Python) on a worker thread, so the event
    loop keeps answering /health and other requests while it runs."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(work), CONVERSION_DEADLINE_S)
    except TimeoutError as exc:
        raise ApiError(
            400,
            f"the output format took over {CONVERSION_DEADLINE_S:.0f} s to convert; simplify it",
            code="unsupported_schema",
        ) from exc


def refusal(exc: GrammarRefused, param: str) -> ApiError:
    """The 400 for a refused schema, naming the field from the request's root (``param`` is
    where the schema sits in the request)."""
    field = f"{param}.{exc.field}" if exc.field else param
    return ApiError(400, f"{field}: {exc.problem}", code="unsupported_schema", param=field)


def schema_grammar(schema: Any, param: str) -> str:
    """The grammar for ``schema``, or a 400 naming the offending field under ``param``."""
    try:
        return grammar_from_json_schema(schema)
    except GrammarRefused as exc:
        raise refusal(exc, param) from exc
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
        return schema_grammar(response_format.get("schema", _ANY_OBJECT), "response_format.schema")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if schema is None:
            raise ApiError(
                400, "response_format.json_schema.schema is required", param="response_format"
            )
        return schema_grammar(schema, "response_format.json_schema.schema")
    raise ApiError(400, f"response_format type {kind!r} is not supported", param="response_format")


def responses_format_grammar(fmt: Any) -> str | None:
    """The Responses API's ``text.format``: the schema sits in the format object itself."""
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return schema_grammar(_ANY_OBJECT, "text.format")
    if kind == "json_schema":
        if fmt.get("schema") is None:
            raise ApiError(400, "text.format.schema is required", param="text.format.schema")
        return schema_grammar(fmt["schema"], "text.format.schema")
    raise ApiError(400, f"text.format type {kind!r} is not supported", param="text.format")


def ollama_format_grammar(fmt: Any) -> str | None:
    if fmt in (None, ""):
        return None
    if fmt == "json":
        return schema_grammar(_ANY_OBJECT, "format")
    if isinstance(fmt, dict):
        return schema_grammar(fmt, "format")
    raise ApiError(400, 'format must be "json" or a JSON schema', param="format")
