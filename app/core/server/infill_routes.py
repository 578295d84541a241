"""llama.cpp's ``POST /infill``: fill-in-the-middle with other files as context, as llama.vscode
and llama.vim call it, answered and streamed in llama-server's own shapes.

The prompt is the model's own FIM layout (``app.core.engine.fim``); what the context cannot hold
is cut far from the cursor first, and the answer says so in ``truncated``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.server.client_names import INFILL_PATH, client_name
from app.core.server.dialects import note_usage, served_model
from app.core.server.errors import ApiError
from app.core.server.generation_stream import (
    SSE_HEADERS,
    Chunk,
    GenerationStream,
    chain_events,
    first_event_or_disconnect,
    result_or_disconnect,
)
from app.core.server.infill_schemas import InfillBody

router = APIRouter()


def _stop_type(result: GenerationResult) -> str:
    """llama-server's names: the end-of-generation token, a stop string, the token limit."""
    if result.finish_reason == "length":
        return "limit"
    if result.finish_reason == "stop":
        return "word" if result.stop_sequence is not None else "eos"
    return "none"


def _per(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _timings(result: GenerationResult) -> dict[str, float]:
    """Measured on the engine thread, in llama-server's fields."""
    prompt_n = result.prompt_tokens - result.cached_prompt_tokens
    per_second = result.decode_tokens_per_s or 0.0
    return {
        "cache_n": result.cached_prompt_tokens,
        "prompt_n": prompt_n,
        "prompt_ms": result.prompt_s * 1000,
        "prompt_per_token_ms": _per(result.prompt_s * 1000, prompt_n),
        "prompt_per_second": _per(prompt_n, result.prompt_s),
        "predicted_n": result.completion_tokens,
        "predicted_ms": result.decode_s * 1000,
        "predicted_per_token_ms": _per(1000, per_second),
        "predicted_per_second": per_second,
    }


def _final(result: GenerationResult, model: str, content: str) -> dict[str, Any]:
    return {
        "index": 0,
        "content": content,
        "tokens": [],
        "stop": True,
        "model": model,
        "tokens_predicted": result.completion_tokens,
        "tokens_evaluated": result.prompt_tokens,
        # What the slot's cache holds for the next keystroke's request to reuse.
        "tokens_cached": result.prompt_tokens + result.completion_tokens,
        "has_new_line": "\n" in result.text,
        "truncated": result.prompt_truncated,
        "stop_type": _stop_type(result),
        "stopping_word": result.stop_sequence or "",
        "timings": _timings(result),
    }


def _picked(answer: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Only the asked-for fields, keyed by their paths ("timings/prompt_n"), as llama-server
    answers ``response_fields``; paths that name nothing are left out."""
    if not fields:
        return answer
    picked: dict[str, Any] = {}
    for path in fields:
        node: Any = answer
        for key in path.split("/"):
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            picked[path] = node
    return picked


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


@router.post(INFILL_PATH, response_model=None)
async def infill(body: InfillBody, request: Request) -> JSONResponse | StreamingResponse:
    served = await served_model(request, body.model)
    engine, info = served.engine, served.info
    note_usage(request, info.model_id, None)
    if not info.supports_fim:
        raise ApiError(
            400,
            f"infill is not supported by {info.model_id!r}: its vocabulary has no "
            "fill-in-the-middle tokens; load a code model trained for FIM (e.g. Qwen2.5-Coder)",
            code="not_supported",
        )
    generation = GenerationRequest(
        prompt=body.input_prefix + body.prompt,
        suffix=body.input_suffix,
        context_files=body.context_files(),
        max_tokens=body.max_tokens(),
        stop=body.stops(),
        sampling=body.sampling(),
        line_deadline_s=body.line_deadline_s(),
        source="api",
        client=client_name(request),
    )
    stream = GenerationStream(engine, generation)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        note_usage(request, info.model_id, result)
        return JSONResponse(
            _picked(_final(result, info.model_id, result.text), body.response_fields)
        )
    # Errors known before the first token still get a JSON answer with their status.
    first = await first_event_or_disconnect(stream, request)

    async def body_stream() -> AsyncIterator[bytes]:
        async for event in chain_events([first], stream):
            if isinstance(event, Chunk):
                yield _sse({"index": 0, "content": event.text, "stop": False})
            else:
                note_usage(request, info.model_id, event.result)
                # The text went out in the chunks; the last event carries the counts.
                final = _final(event.result, info.model_id, "")
                yield _sse(_picked(final, body.response_fields))

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)
