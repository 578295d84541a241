"""The Anthropic Messages dialect: /v1/messages and /v1/messages/count_tokens.

Claude Code and the anthropic SDKs speak it (``ANTHROPIC_BASE_URL``). A request becomes the same
chat job as an OpenAI chat completion (one prompt builder, tool planner, reply assembler and
cancel-on-disconnect stream); only the wire shapes differ.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.core.engine.request import Sampling
from app.core.engine.result import GenerationResult
from app.core.errors import AppError
from app.core.server.anthropic_schemas import CountTokensBody, MessagesBody
from app.core.server.anthropic_stream import ContentBlocks, sse
from app.core.server.chat_request import ChatJob, chat_job
from app.core.server.client_names import client_name
from app.core.server.dialects import Served, finish_reason, note_usage, served_model
from app.core.server.errors import ApiError, api_error_for
from app.core.server.generation_stream import (
    FIRST_EVENT_WAIT_S,
    KEEPALIVE_EVERY_S,
    SSE_HEADERS,
    Chunk,
    GenerationStream,
    engine_job_or_disconnect,
    events_with_keepalive,
    first_event_within,
    result_or_disconnect,
)
from app.core.server.reply import Reply
from app.core.server.response_format import off_the_loop

# Claude Code's prompts are ~20k tokens, and its client gives up on a response whose headers
# take 10 minutes: its streams start within FIRST_EVENT_WAIT_S, pinging every PING_EVERY_S.
PING_EVERY_S = KEEPALIVE_EVERY_S

router = APIRouter()


def _usage(result: GenerationResult) -> dict[str, Any]:
    # Anthropic counts prompt tokens read from the cache apart from the rest of the input.
    return {
        "input_tokens": result.prompt_tokens - result.cached_prompt_tokens,
        "output_tokens": result.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": result.cached_prompt_tokens,
    }


def _stop_reason(
    result: GenerationResult, reply: Reply, stops: tuple[str, ...]
) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence): "tool_use" exactly when the reply carries calls."""
    if reply.tool_calls:
        return "tool_use", None
    if result.stop_sequence is not None and result.stop_sequence in stops:
        return "stop_sequence", result.stop_sequence
    return ("max_tokens" if finish_reason(result) == "length" else "end_turn"), None


async def _job(
    request: Request,
    body: CountTokensBody,
    served: Served,
    *,
    max_tokens: int | None,
    stop: tuple[str, ...],
    sampling: Sampling,
) -> ChatJob:
    messages = body.chat_messages()
    tools, tool_choice = body.openai_tools(), body.openai_tool_choice()
    client = client_name(request)
    # Tool schemas become grammars on a worker thread: a large one must not stall the loop.
    return await off_the_loop(
        lambda: chat_job(
            served.info,
            messages,
            tools=tools,
            tool_choice=tool_choice,
            format_grammar=None,
            max_tokens=max_tokens,
            stop=stop,
            sampling=sampling,
            client=client,
        )
    )


@router.post("/v1/messages/count_tokens")
async def count_tokens(body: CountTokensBody, request: Request) -> dict[str, int]:
    served = await served_model(request, body.model)
    note_usage(request, served.info.model_id, None)
    # The prompt is all that is counted: no reply limits or sampling apply.
    job = await _job(request, body, served, max_tokens=None, stop=(), sampling=Sampling())
    count = await engine_job_or_disconnect(
        lambda _cancel: served.engine.count_tokens(job.request), request
    )
    return {"input_tokens": count}


@router.post("/v1/messages", response_model=None)
async def messages(body: MessagesBody, request: Request) -> JSONResponse | StreamingResponse:
    served = await served_model(request, body.model)
    model = served.info.model_id
    note_usage(request, model, None)
    stops = body.stops()
    job = await _job(
        request, body, served, max_tokens=body.max_tokens, stop=stops, sampling=body.sampling()
    )
    assembler = job.assembler()
    blocks = ContentBlocks()
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": model,
    }
    stream = GenerationStream(served.engine, job.request)
    if not body.stream:
        result = await result_or_disconnect(stream, request)
        note_usage(request, model, result)
        blocks.add(assembler.feed(result.text))
        blocks.add(assembler.finish())
        blocks.finish()
        reason, sequence = _stop_reason(result, assembler.reply, stops)
        return JSONResponse(
            {
                **message,
                "content": blocks.blocks,
                "stop_reason": reason,
                "stop_sequence": sequence,
                "usage": _usage(result),
            }
        )
    first = await first_event_within(stream, request, FIRST_EVENT_WAIT_S)

    async def body_stream() -> AsyncIterator[bytes]:
        try:
            # The prompt's count arrives with the reply's end, in message_delta's usage.
            start = {"input_tokens": 0, "output_tokens": 0}
            yield sse(
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": start,
                    },
                }
            )
            yield sse({"type": "ping"})
            events = events_with_keepalive([] if first is None else [first], stream, PING_EVERY_S)
            async for event in events:
                if event is None:
                    yield sse({"type": "ping"})
                    continue
                if isinstance(event, Chunk):
                    for out in blocks.add(assembler.feed(event.text)):
                        yield sse(out)
                    continue
                for out in [*blocks.add(assembler.finish()), *blocks.finish()]:
                    yield sse(out)
                note_usage(request, model, event.result)
                reason, sequence = _stop_reason(event.result, assembler.reply, stops)
                yield sse(
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": reason, "stop_sequence": sequence},
                        "usage": _usage(event.result),
                    }
                )
                yield sse({"type": "message_stop"})
        except ApiError as exc:
            yield sse(exc.anthropic_body())
        except AppError as exc:
            yield sse(api_error_for(exc).anthropic_body())
        except Exception as exc:  # noqa: BLE001 - the client is told in its stream, not left hanging
            error = ApiError(500, f"internal error: {type(exc).__name__}", type_="server_error")
            yield sse(error.anthropic_body())
        finally:
            stream.close()  # also when the client left before the events began

    return StreamingResponse(body_stream(), media_type="text/event-stream", headers=SSE_HEADERS)
