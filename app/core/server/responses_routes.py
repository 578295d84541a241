"""OpenAI's Responses API, stateless: ``POST /v1/responses`` (what Codex CLI and
``client.responses.create`` speak), served by the chat route's own job, reply parsing and
streaming."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.errors import AppError, Cancelled
from app.core.server.chat_request import chat_job
from app.core.server.client_names import client_name
from app.core.server.dialects import finish_reason, note_usage, served_model
from app.core.server.errors import ApiError, api_error_for
from app.core.server.generation_stream import (
    FIRST_EVENT_WAIT_S,
    KEEPALIVE_EVERY_S,
    SSE_HEADERS,
    Chunk,
    GenerationStream,
    events_with_keepalive,
    first_event_within,
    result_or_disconnect,
)
from app.core.server.reply import Reply
from app.core.server.response_format import off_the_loop, responses_format_grammar
from app.core.server.responses_output import ItemStatus, ResponseOutput
from app.core.server.responses_schemas import (
    ResponsesBody,
    chat_messages,
    chat_tool_choice,
    chat_tools,
)

router = APIRouter()


def _status(result: GenerationResult) -> ItemStatus:
    # Cut off by max_output_tokens or by the context's end: OpenAI names both the same way.
    return "incomplete" if finish_reason(result) == "length" else "completed"


def _usage(result: GenerationResult, reasoning_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": result.prompt_tokens,
        # The KV cache is reused, never billed: nothing is written to a paid cache.
        "input_tokens_details": {
            "cached_tokens": result.cached_prompt_tokens,
            "cache_write_tokens": 0,
        },
        "output_tokens": result.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


async def _reasoning_tokens(engine: Engine, reply: Reply, completion_tokens: int) -> int:
    """The tokens the reply spent thinking. The engine counts a whole reply's tokens only, so a
    reply that is all thinking counts them all; otherwise the thinking is tokenized again (less
    the BOS token a raw prompt starts with), which matches what the model wrote closely."""
    if not reply.reasoning:
        return 0
    if not reply.content and not reply.tool_calls:
        return completion_tokens
    with_text = engine.count_tokens(GenerationRequest(prompt=reply.reasoning))
    bare = engine.count_tokens(GenerationRequest(prompt=""))
    counted = await asyncio.wrap_future(with_text) - await asyncio.wrap_future(bare)
    return max(0, min(counted, completion_tokens))


class _Envelope:
    """What every snapshot of one response shares (OpenAI echoes the request's settings)."""

    def __init__(self, body: ResponsesBody, model: str) -> None:
        sampling = body.sampling()
        self._fields: dict[str, Any] = {
            "id": f"resp_{uuid.uuid4().hex}",
            "object": "response",
            "created_at": int(time.time()),
            "model": model,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "parallel_tool_calls": body.parallel_tool_calls is not False,
            "previous_response_id": None,
            "reasoning": None,
            "store": False,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "text": {"format": body.format or {"type": "text"}},
            "tool_choice": body.tool_choice or "auto",
            "tools": body.tools or [],
            "truncation": "disabled",
            "metadata": body.metadata or {},
            "user": body.user,
        }

    def snapshot(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            **self._fields,
            "status": status,
            "error": error,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "output": output,
            "usage": usage,
        }


SSE_KEEPALIVE = b": keep-alive\n\n"


def _sse(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


@router.post("/v1/responses", response_model=None)
async def create_response(
    body: ResponsesBody, request: Request
) -> JSONResponse | StreamingResponse:
    body.refuse_state()
    served = await served_model(request, body.model)
    engine, info = served.engine, served.info
    note_usage(request, info.model_id, None)
    try:
        messages = chat_messages(body.instructions, body.input)
    except ValueError as exc:
        raise ApiError(400, str(exc), param="input") from exc
    tools, tool_choice = chat_tools(body.tools), chat_tool_choice(body.tool_choice)
    client = client_name(request)
    job = await off_the_loop(
        lambda: chat_job(
            info,
            messages,
            tools=tools,
            tool_choice=tool_choice,
            format_grammar=responses_format_grammar(body.format),
            max_tokens=body.max_output_tokens,
            stop=body.stops(),
            sampling=body.sampling(),
            client=client,
        )
    )
    assembler = job.assembler()
    output = ResponseOutput()
    envelope = _Envelope(body, info.model_id)
    stream = GenerationStream(engine, job.request)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        note_usage(request, info.model_id, result)
        output.add(assembler.feed(result.text))
        output.add(assembler.finish())
        status = _status(result)
        output.finish(status)
        reasoning = await _reasoning_tokens(engine, assembler.reply, result.completion_tokens)
        usage = _usage(result, reasoning)
        return JSONResponse(envelope.snapshot(status, output.items, usage))
    # A first event within the wait (an error too) decides the answer's status; a long prompt
    # read starts the stream before it, and a later error ends it as response.failed.
    first = await first_event_within(stream, request, FIRST_EVENT_WAIT_S)

    async def events() -> AsyncIterator[dict[str, Any] | None]:
        yield {"type": "response.created", "response": envelope.snapshot("in_progress", [])}
        yield {"type": "response.in_progress", "response": envelope.snapshot("in_progress", [])}
        try:
            received = [] if first is None else [first]
            async for event in events_with_keepalive(received, stream, KEEPALIVE_EVERY_S):
                if event is None:
                    yield None  # a keep-alive is due
                    continue
                if isinstance(event, Chunk):
                    for out in output.add(assembler.feed(event.text)):
                        yield out
                    continue
                for out in output.add(assembler.finish()):
                    yield out
                note_usage(request, info.model_id, event.result)
                status = _status(event.result)
                for out in output.finish(status):
                    yield out
                reasoning = await _reasoning_tokens(
                    engine, assembler.reply, event.result.completion_tokens
                )
                final = envelope.snapshot(status, output.items, _usage(event.result, reasoning))
                yield {"type": f"response.{status}", "response": final}
        except Cancelled:
            raise
        except AppError as exc:
            # A prompt the model cannot take (too long, a template error) is the client's.
            code = "invalid_prompt" if api_error_for(exc).status < 500 else "server_error"
            error = {"code": code, "message": exc.user_message}
            yield {
                "type": "response.failed",
                "response": envelope.snapshot("failed", output.items, error=error),
            }

    async def body_stream() -> AsyncIterator[bytes]:
        sequence = 0
        async for event in events():
            if event is None:
                # The Responses API has no ping event; SSE comments are ignored by its clients.
                yield SSE_KEEPALIVE
                continue
            yield _sse({**event, "sequence_number": sequence})
            sequence += 1

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)
