"""The OpenAI dialect: /v1/models, /v1/chat/completions, /v1/completions."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult, ModelInfo
from app.core.errors import ModelNotLoaded
from app.core.server.client_names import client_name
from app.core.server.errors import ApiError
from app.core.server.generation_stream import (
    Chunk,
    Finished,
    GenerationStream,
    first_event_or_disconnect,
    result_or_disconnect,
)
from app.core.server.schemas import ChatCompletionBody, CompletionBody

# OpenAI's own default for /v1/completions; autocomplete clients send their own.
COMPLETION_DEFAULT_MAX_TOKENS = 16
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.services.engine
    return engine


def _loaded_model(engine: Engine, requested: str | None) -> ModelInfo:
    info = engine.model
    if info is None:
        raise ModelNotLoaded("no model is loaded; load one in Homefire first")
    if requested and not _same_model(requested, info):
        raise ApiError(
            404,
            f"the model {requested!r} is not loaded; this server serves {info.model_id!r}",
            code="model_not_found",
            param="model",
        )
    return info


def _same_model(requested: str, info: ModelInfo) -> bool:
    wanted = requested.strip().lower()
    return wanted in {info.model_id.lower(), info.path.name.lower(), info.path.stem.lower()}


def _model_entry(info: ModelInfo) -> dict[str, Any]:
    return {
        "id": info.model_id,
        "object": "model",
        "created": int(info.path.stat().st_mtime) if info.path.exists() else 0,
        "owned_by": "homefire",
        "context_length": info.n_ctx,
        "meta": {
            "n_ctx": info.n_ctx,
            "n_ctx_train": info.n_ctx_train,
            "n_params": info.n_params,
            "size": info.size_bytes,
            "architecture": info.architecture,
        },
    }


def _usage(result: GenerationResult) -> dict[str, Any]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": result.cached_prompt_tokens},
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"

router = APIRouter()


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    info = _engine(request).model
    return {"object": "list", "data": [_model_entry(info)] if info else []}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    return _model_entry(_loaded_model(_engine(request), model_id))


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionBody, request: Request
) -> JSONResponse | StreamingResponse:
    engine = _engine(request)
    info = _loaded_model(engine, body.model)
    try:
        messages = tuple(m.to_message() for m in body.messages)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="messages") from exc
    generation = GenerationRequest(
        messages=messages,
        max_tokens=body.token_limit(),
        stop=body.stops(),
        sampling=body.sampling(),
        source="api",
        client=client_name(request),
    )
    ident = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    stream = GenerationStream(engine, generation)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": info.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": result.text},
                        "logprobs": None,
                        "finish_reason": _finish(result),
                    }
                ],
                "usage": _usage(result),
            }
        )
    # Errors known before the first token (context overflow, template) still get a JSON answer.
    first = await first_event_or_disconnect(stream, request)

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": info.model_id,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    async def body_stream() -> AsyncIterator[bytes]:
        yield _sse(chunk({"role": "assistant", "content": ""}, None))
        pending = [first]
        async for event in _chain(pending, stream):
            if isinstance(event, Chunk):
                yield _sse(chunk({"content": event.text}, None))
            else:
                yield _sse(chunk({}, _finish(event.result)))
                if body.include_usage:
                    final = chunk({}, None)
                    final["choices"] = []
                    final["usage"] = _usage(event.result)
                    yield _sse(final)
        yield SSE_DONE

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/v1/completions", response_model=None)
async def completions(body: CompletionBody, request: Request) -> JSONResponse | StreamingResponse:
    engine = _engine(request)
    info = _loaded_model(engine, body.model)
    prompt = body.prompt_text()
    generation = GenerationRequest(
        prompt=prompt,
        max_tokens=body.max_tokens or COMPLETION_DEFAULT_MAX_TOKENS,
        stop=body.stops(),
        sampling=body.sampling(),
        # Raw prompts from autocomplete clients carry the model's FIM/template tokens already.
        prompt_special_tokens=True,
        source="api",
        client=client_name(request),
    )
    ident = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    prefix = prompt if body.echo else ""
    stream = GenerationStream(engine, generation)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        return JSONResponse(
            {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": info.model_id,
                "choices": [
                    {
                        "index": 0,
                        "text": prefix + result.text,
                        "logprobs": None,
                        "finish_reason": _finish(result),
                    }
                ],
                "usage": _usage(result),
            }
        )
    first = await first_event_or_disconnect(stream, request)

    def chunk(text: str, finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": info.model_id,
            "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }

    async def body_stream() -> AsyncIterator[bytes]:
        if prefix:
            yield _sse(chunk(prefix, None))
        async for event in _chain([first], stream):
            if isinstance(event, Chunk):
                yield _sse(chunk(event.text, None))
            else:
                yield _sse(chunk("", _finish(event.result)))
                if body.include_usage:
                    final = chunk("", None)
                    final["choices"] = []
                    final["usage"] = _usage(event.result)
                    yield _sse(final)
        yield SSE_DONE

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)


async def _chain(
    first: list[Chunk | Finished], stream: GenerationStream
) -> AsyncIterator[Chunk | Finished]:
    """The events already received, then the rest; the generation is cancelled on exit."""
    try:
        for event in first:
            yield event
            if isinstance(event, Finished):
                return
        async for event in stream.events():
            yield event
    finally:
        stream.close()


def _finish(result: GenerationResult) -> str:
    # A cancelled generation only reaches a client that is still there at shutdown.
    return "stop" if result.finish_reason == "cancelled" else result.finish_reason
