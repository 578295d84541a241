"""The Ollama dialect on the same port: what Copilot, JetBrains, Open WebUI, Zed and the Ollama
providers of Continue, Cline, Roo and Aider call.

Streams are NDJSON (one JSON object per line), ending with a ``done: true`` line that carries
the counters and durations (nanoseconds, measured). Models are loaded on request and unloaded
as Ollama does (``keep_alive``), but never pulled, created or deleted over the API: the user
manages files in Homefire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from app.core.engine.request import ChatMessage, GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.server.chat_request import ChatJob, chat_job
from app.core.server.client_names import client_name
from app.core.server.dialects import (
    Served,
    finish_reason,
    note_usage,
    pool_of,
    served_model,
    served_models,
)
from app.core.server.embeddings import embed_texts
from app.core.server.errors import ApiError
from app.core.server.generation_stream import (
    Chunk,
    GenerationStream,
    chain_events,
    first_event_or_disconnect,
    result_or_disconnect,
)
from app.core.server.ollama_models import (
    OLLAMA_COMPAT_VERSION,
    iso_time,
    library_tag_entry,
    running_entry,
    show_entry,
    tag_entry,
)
from app.core.server.ollama_schemas import (
    OllamaBody,
    OllamaChatBody,
    OllamaEmbedBody,
    OllamaEmbeddingsBody,
    OllamaGenerateBody,
    OllamaShowBody,
)
from app.core.server.reasoning import Answer, Reasoning
from app.core.server.reply import ReplyAssembler, ReplyEvent
from app.core.server.response_format import off_the_loop, ollama_format_grammar
from app.core.server.tool_calls import ToolCall

NDJSON = "application/x-ndjson"
router = APIRouter()


def _now() -> str:
    return iso_time(datetime.now(UTC))


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _counters(result: GenerationResult, started: float, load_s: float) -> dict[str, Any]:
    return {
        "done_reason": finish_reason(result),
        "total_duration": int((time.monotonic() - started) * 1e9),
        "load_duration": int(load_s * 1e9),  # waiting for the model to load (0 when loaded)
        "prompt_eval_count": result.prompt_tokens,
        "prompt_eval_duration": int(result.prompt_s * 1e9),
        "eval_count": result.completion_tokens,
        "eval_duration": int(result.decode_s * 1e9),
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    # Ollama sends arguments as an object, not as JSON text.
    return {"function": {"name": call.name, "arguments": call.arguments_object()}}


# -- discovery -----------------------------------------------------------------------------


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def root() -> PlainTextResponse:
    return PlainTextResponse("Ollama is running")


@router.get("/api/version")
async def version() -> dict[str, str]:
    return {"version": OLLAMA_COMPAT_VERSION}


@router.get("/api/tags")
async def tags(request: Request) -> dict[str, Any]:
    """The loaded models and, with load on request on, every library model a request may name."""
    entries = [tag_entry(served.info) for served in served_models(request.app)]
    pool = pool_of(request.app)
    if pool.loads_on_request:
        listed = {entry["name"] for entry in entries}
        library = await asyncio.to_thread(pool.library_models)
        entries += [library_tag_entry(m) for m in library if m.name not in listed]
    return {"models": entries}


@router.get("/api/ps")
async def running(request: Request) -> dict[str, Any]:
    return {"models": [running_entry(loaded) for loaded in pool_of(request.app).models()]}


@router.post("/api/show")
async def show(body: OllamaShowBody, request: Request) -> dict[str, Any]:
    """A loaded model's details, or (load on request on) a library model's read from its file,
    loading nothing: clients ask this of every model /api/tags lists."""
    pool = pool_of(request.app)
    wanted = body.wanted()
    if not wanted or pool.find(wanted) is not None or not pool.loads_on_request:
        return show_entry((await served_model(request, wanted)).info)  # loaded, or its error
    # An unknown or ambiguous name reaches the error handlers as itself (404, 400).
    return show_entry(await asyncio.to_thread(pool.describe, wanted))


# -- generation ----------------------------------------------------------------------------


def _loaded_reply(model: str, key: str, reason: str = "load") -> dict[str, Any]:
    """Ollama's answer to an empty request, which clients send to preload a model (or, with
    ``keep_alive: 0``, to unload it)."""
    reply: dict[str, Any] = {"model": model, "created_at": _now(), "done": True}
    reply["done_reason"] = reason
    reply[key] = {"role": "assistant", "content": ""} if key == "message" else ""
    return reply


async def _serve_body(
    request: Request, body: OllamaBody, empty: bool, key: str
) -> tuple[Served | None, JSONResponse | None, float]:
    """The model ``body`` names, loaded at its ``num_ctx`` and kept for its ``keep_alive``; or
    the whole answer to an empty request (a preload, or Ollama's unload idiom); and the seconds
    spent waiting for a load."""
    keep_alive = body.keep_alive_s()
    if empty and keep_alive == 0:
        # {"model": m, "keep_alive": 0}: unload now (after its running requests), load nothing.
        await asyncio.wrap_future(pool_of(request.app).unload(body.model))
        return None, JSONResponse(_loaded_reply(body.model, key, "unload")), 0.0
    before = {id(served.info) for served in served_models(request.app)}
    started = time.monotonic()
    served = await served_model(
        request, body.model, n_ctx=body.options.context(), keep_alive_s=keep_alive
    )
    # A model (re)loaded for this request: the wait was its load, as Ollama reports it.
    load_s = 0.0 if id(served.info) in before else time.monotonic() - started
    if empty:
        return None, JSONResponse(_loaded_reply(served.info.model_id, key)), load_s
    return served, None, load_s


async def _respond(
    request: Request,
    served: Served,
    generation: GenerationRequest,
    assembler: ReplyAssembler | None,
    stream_reply: bool,
    shape: Callable[[list[ReplyEvent]], dict[str, Any] | None],
    final: Callable[[ReplyAssembler | None, str], dict[str, Any]],
    load_s: float,
) -> JSONResponse | StreamingResponse:
    """Run one generation and answer it whole or as NDJSON; ``shape`` turns reply events into a
    line's payload, ``final`` builds the whole reply (or the last line's payload)."""
    started = time.monotonic()
    info = served.info
    note_usage(request, info.model_id, None)
    stream = GenerationStream(served.engine, generation)
    base = {"model": info.model_id}
    if not stream_reply:
        result = await result_or_disconnect(stream, request)
        note_usage(request, info.model_id, result)
        if assembler is not None:
            assembler.feed(result.text)
            assembler.finish()
        return JSONResponse(
            {
                **base,
                "created_at": _now(),
                **final(assembler, result.text),
                "done": True,
                **_counters(result, started, load_s),
            }
        )
    first = await first_event_or_disconnect(stream, request)

    async def lines() -> AsyncIterator[bytes]:
        async for event in chain_events([first], stream):
            if isinstance(event, Chunk):
                events: list[ReplyEvent] = (
                    assembler.feed(event.text) if assembler else [Answer(event.text)]
                )
                payload = shape(events)
                if payload is not None:
                    yield _line({**base, "created_at": _now(), **payload, "done": False})
                continue
            if assembler is not None:
                payload = shape(assembler.finish())
                if payload is not None:
                    yield _line({**base, "created_at": _now(), **payload, "done": False})
            note_usage(request, info.model_id, event.result)
            yield _line(
                {
                    **base,
                    "created_at": _now(),
                    **final(None, ""),
                    "done": True,
                    **_counters(event.result, started, load_s),
                }
            )

    return StreamingResponse(lines(), media_type=NDJSON)


def _chat_payload(events: list[ReplyEvent]) -> dict[str, Any] | None:
    content = "".join(e.text for e in events if isinstance(e, Answer))
    thinking = "".join(e.text for e in events if isinstance(e, Reasoning))
    calls = [_tool_call(e) for e in events if isinstance(e, ToolCall)]
    if not (content or thinking or calls):
        return None
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    return {"message": message}


def _chat_final(assembler: ReplyAssembler | None, _text: str) -> dict[str, Any]:
    if assembler is None:
        return {"message": {"role": "assistant", "content": ""}}
    reply = assembler.reply
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning:
        message["thinking"] = reply.reasoning
    if reply.tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in reply.tool_calls]
    return {"message": message}


@router.post("/api/chat", response_model=None)
async def chat(body: OllamaChatBody, request: Request) -> JSONResponse | StreamingResponse:
    served, answer, load_s = await _serve_body(request, body, not body.messages, "message")
    if served is None:
        assert answer is not None
        return answer
    info = served.info
    try:
        messages = tuple(m.to_message() for m in body.messages)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from exc
    client = client_name(request)
    # Schemas become grammars on a worker thread: a large one must not stall the event loop.
    job: ChatJob = await off_the_loop(
        lambda: chat_job(
            info,
            messages,
            tools=body.tools,
            tool_choice=None,
            format_grammar=ollama_format_grammar(body.format),
            max_tokens=body.options.max_tokens(),
            stop=body.options.stops(),
            sampling=body.options.sampling(),
            client=client,
        )
    )
    return await _respond(
        request,
        served,
        job.request,
        job.assembler(),
        body.stream,
        _chat_payload,
        _chat_final,
        load_s,
    )


def _generate_payload(events: list[ReplyEvent]) -> dict[str, Any] | None:
    text = "".join(e.text for e in events if isinstance(e, Answer))
    thinking = "".join(e.text for e in events if isinstance(e, Reasoning))
    if not (text or thinking):
        return None
    payload: dict[str, Any] = {"response": text}
    if thinking:
        payload["thinking"] = thinking
    return payload


def _generate_final(assembler: ReplyAssembler | None, text: str) -> dict[str, Any]:
    if assembler is None:
        return {"response": text}
    payload: dict[str, Any] = {"response": assembler.reply.content}
    if assembler.reply.reasoning:
        payload["thinking"] = assembler.reply.reasoning
    return payload


@router.post("/api/generate", response_model=None)
async def generate(body: OllamaGenerateBody, request: Request) -> JSONResponse | StreamingResponse:
    if body.images:
        raise ApiError(400, "images are not supported by this model")
    empty = not body.prompt and body.suffix is None
    served, answer, load_s = await _serve_body(request, body, empty, "response")
    if served is None:
        assert answer is not None
        return answer
    info = served.info
    options = body.options
    grammar = await off_the_loop(lambda: ollama_format_grammar(body.format))
    common: dict[str, Any] = {
        "max_tokens": options.max_tokens(),
        "stop": options.stops(),
        "sampling": options.sampling(),
        "grammar": grammar,
        "source": "api",
        "client": client_name(request),
    }
    assembler: ReplyAssembler | None
    if body.suffix is not None:
        # Autocomplete: the engine wraps prefix and suffix in the model's FIM tokens.
        generation = GenerationRequest(prompt=body.prompt, suffix=body.suffix, **common)
        assembler = None
    elif body.raw:
        # The client wrote the model's own tokens (Zed's FIM prompts): parse them as such.
        generation = GenerationRequest(prompt=body.prompt, prompt_special_tokens=True, **common)
        assembler = None
    else:
        messages = [ChatMessage(role="user", content=body.prompt)]
        if body.system:
            messages.insert(0, ChatMessage(role="system", content=body.system))
        generation = GenerationRequest(messages=tuple(messages), **common)
        assembler = ReplyAssembler(starts_thinking=info.opens_thinking, tool_names=())
    return await _respond(
        request,
        served,
        generation,
        assembler,
        body.stream,
        _generate_payload,
        _generate_final,
        load_s,
    )


# -- embeddings ----------------------------------------------------------------------------


@router.post("/api/embed")
async def embed(body: OllamaEmbedBody, request: Request) -> dict[str, Any]:
    started = time.monotonic()
    before = {id(served.info) for served in served_models(request.app)}
    served = await served_model(request, body.model, keep_alive_s=body.keep_alive_s())
    load_s = 0.0 if id(served.info) in before else time.monotonic() - started
    engine, info = served.engine, served.info
    note_usage(request, info.model_id, None)
    result = await embed_texts(request, engine, body.texts())
    request.state.prompt_tokens = result.prompt_tokens
    return {
        "model": info.model_id,
        "embeddings": result.vectors,
        "total_duration": int((time.monotonic() - started) * 1e9),
        "load_duration": int(load_s * 1e9),
        "prompt_eval_count": result.prompt_tokens,
    }


@router.post("/api/embeddings")
async def embeddings_legacy(body: OllamaEmbeddingsBody, request: Request) -> dict[str, Any]:
    served = await served_model(request, body.model)
    engine, info = served.engine, served.info
    note_usage(request, info.model_id, None)
    result = await embed_texts(request, engine, [body.prompt])
    request.state.prompt_tokens = result.prompt_tokens
    return {"embedding": result.vectors[0]}


# Registered last: the routes above take precedence over this catch-all.
@router.api_route(
    "/api/{action}",
    methods=["POST", "DELETE"],
    include_in_schema=False,
)
async def management(action: str) -> JSONResponse:
    if action in ("pull", "push", "create", "copy", "delete", "blobs"):
        raise ApiError(403, f"/api/{action} is not available: manage models in the Homefire app")
    raise ApiError(404, f"/api/{action} is not a route Homefire serves")
