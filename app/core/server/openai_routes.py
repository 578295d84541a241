"""The OpenAI dialect: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult, ModelInfo
from app.core.library.model import LibraryModel
from app.core.server.chat_request import chat_job
from app.core.server.client_names import client_name
from app.core.server.dialects import (
    finish_reason,
    note_usage,
    pool_of,
    served_model,
    served_models,
)
from app.core.server.embeddings import embed_texts
from app.core.server.errors import ApiError
from app.core.server.generation_stream import (
    SSE_HEADERS,
    Chunk,
    GenerationStream,
    chain_events,
    first_event_or_disconnect,
    result_or_disconnect,
)
from app.core.server.reasoning import Answer, Reasoning
from app.core.server.reply import Reply, ReplyEvent
from app.core.server.response_format import off_the_loop, openai_format_grammar
from app.core.server.schemas import ChatCompletionBody, CompletionBody, EmbeddingBody
from app.core.server.tool_calls import ToolCall, argument_fragments

# OpenAI's own default for /v1/completions; autocomplete clients send their own.
COMPLETION_DEFAULT_MAX_TOKENS = 16


def check_token_ids(body: ChatCompletionBody | CompletionBody, info: ModelInfo) -> None:
    unknown = body.unknown_token_ids(info.n_vocab)
    if unknown:
        raise ApiError(
            400,
            f"logit_bias names token {unknown[0]}, but this model's vocabulary has "
            f"{info.n_vocab} tokens (ids 0 to {info.n_vocab - 1})",
            param="logit_bias",
        )


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
            "n_vocab": info.n_vocab,
            "loaded": True,
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
    """The loaded models and, with load on request on, every library model a request may name
    (``meta.loaded`` tells them apart)."""
    data = [_model_entry(served.info) for served in served_models(request.app)]
    pool = pool_of(request.app)
    if pool.loads_on_request:
        listed = {entry["id"] for entry in data}
        library = await asyncio.to_thread(pool.library_models)
        data += [_library_entry(m) for m in library if m.name not in listed]
    return {"object": "list", "data": data}


def _library_entry(model: LibraryModel) -> dict[str, Any]:
    try:
        created = int(model.path.stat().st_mtime)
    except OSError:
        created = 0
    return {
        "id": model.name,
        "object": "model",
        "created": created,
        "owned_by": "homefire",
        "meta": {
            "size": model.size_bytes,
            "architecture": model.architecture,
            "quant": model.quant,
            "loaded": False,
        },
    }


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    """A loaded model's entry, or (load on request on) a library model's, loading nothing."""
    pool = pool_of(request.app)
    loaded = pool.find(model_id)
    if loaded is not None:
        return _model_entry(loaded.info)
    if not pool.loads_on_request:
        return _model_entry((await served_model(request, model_id)).info)  # its 404
    # An unknown or ambiguous name reaches the error handlers as itself (404, 400).
    return _library_entry(await asyncio.to_thread(pool.resolve, model_id))


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    }


def _message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content if reply.content or not reply.tool_calls else None,
    }
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [_tool_call_json(call) for call in reply.tool_calls]
    return message


def _chat_finish_reason(result: GenerationResult, reply: Reply) -> str:
    # "tool_calls" exactly when the message carries calls: agents decide on it.
    return "tool_calls" if reply.tool_calls else finish_reason(result)


def _tool_call_deltas(index: int, call: ToolCall) -> list[dict[str, Any]]:
    """The first fragment names the call; the arguments follow as string fragments."""
    first = {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }
    rest = [
        {"index": index, "function": {"arguments": fragment}}
        for fragment in argument_fragments(call.arguments)
    ]
    return [first, *rest]


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(
    body: ChatCompletionBody, request: Request
) -> JSONResponse | StreamingResponse:
    served = await served_model(request, body.model)
    engine, info = served.engine, served.info
    check_token_ids(body, info)
    note_usage(request, info.model_id, None)
    try:
        messages = tuple(m.to_message() for m in body.messages)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="messages") from exc
    client = client_name(request)
    # Schemas become grammars on a worker thread: a large one must not stall the event loop.
    job = await off_the_loop(
        lambda: chat_job(
            info,
            messages,
            tools=body.tools,
            tool_choice=body.tool_choice,
            format_grammar=openai_format_grammar(body.response_format),
            max_tokens=body.token_limit(),
            stop=body.stops(),
            sampling=body.sampling(),
            client=client,
        )
    )
    assembler = job.assembler()
    ident = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    stream = GenerationStream(engine, job.request)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        note_usage(request, info.model_id, result)
        assembler.feed(result.text)
        assembler.finish()
        reply = assembler.reply
        return JSONResponse(
            {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": info.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": _message(reply),
                        "logprobs": None,
                        "finish_reason": _chat_finish_reason(result, reply),
                    }
                ],
                "usage": _usage(result),
            }
        )
    # Errors known before the first token (context overflow, template, grammar) still get a
    # JSON answer with their status.
    first = await first_event_or_disconnect(stream, request)

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": info.model_id,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def deltas(events: list[ReplyEvent]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in events:
            if isinstance(event, Reasoning):
                out.append({"reasoning_content": event.text})
            elif isinstance(event, Answer):
                out.append({"content": event.text})
            else:
                index = assembler.reply.tool_calls.index(event)
                out.extend({"tool_calls": [d]} for d in _tool_call_deltas(index, event))
        return out

    async def body_stream() -> AsyncIterator[bytes]:
        yield _sse(chunk({"role": "assistant", "content": ""}, None))
        async for event in chain_events([first], stream):
            if isinstance(event, Chunk):
                for delta in deltas(assembler.feed(event.text)):
                    yield _sse(chunk(delta, None))
                continue
            for delta in deltas(assembler.finish()):
                yield _sse(chunk(delta, None))
            note_usage(request, info.model_id, event.result)
            yield _sse(chunk({}, _chat_finish_reason(event.result, assembler.reply)))
            if body.include_usage:
                final = chunk({}, None)
                final["choices"] = []
                final["usage"] = _usage(event.result)
                yield _sse(final)
        yield SSE_DONE

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/v1/completions", response_model=None)
async def completions(body: CompletionBody, request: Request) -> JSONResponse | StreamingResponse:
    served = await served_model(request, body.model)
    engine, info = served.engine, served.info
    check_token_ids(body, info)
    note_usage(request, info.model_id, None)
    prompt = body.prompt_text()
    generation = GenerationRequest(
        prompt=prompt,
        # With a suffix the engine wraps both in the model's own FIM tokens.
        suffix=body.suffix,
        max_tokens=body.max_tokens or COMPLETION_DEFAULT_MAX_TOKENS,
        stop=body.stops(),
        sampling=body.sampling(),
        # Raw prompts from autocomplete clients carry the model's FIM/template tokens already.
        prompt_special_tokens=body.suffix is None,
        source="api",
        client=client_name(request),
    )
    ident = f"cmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    prefix = prompt if body.echo else ""
    stream = GenerationStream(engine, generation)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        note_usage(request, info.model_id, result)
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
                        "finish_reason": finish_reason(result),
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
        async for event in chain_events([first], stream):
            if isinstance(event, Chunk):
                yield _sse(chunk(event.text, None))
            else:
                note_usage(request, info.model_id, event.result)
                yield _sse(chunk("", finish_reason(event.result)))
                if body.include_usage:
                    final = chunk("", None)
                    final["choices"] = []
                    final["usage"] = _usage(event.result)
                    yield _sse(final)
        yield SSE_DONE

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)


def _encode(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        # What the openai SDK asks for by default: little-endian float32, base64.
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingBody, request: Request) -> dict[str, Any]:
    served = await served_model(request, body.model)
    engine, info = served.engine, served.info
    note_usage(request, info.model_id, None)
    result = await embed_texts(request, engine, body.texts())
    request.state.prompt_tokens = result.prompt_tokens
    width = len(result.vectors[0]) if result.vectors else 0
    if body.dimensions is not None and body.dimensions != width:
        raise ApiError(400, f"this model's embeddings have {width} dimensions", param="dimensions")
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
            for i, v in enumerate(result.vectors)
        ],
        "model": info.model_id,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }
