"""A response's output items and stream events, from reply events, checked by the openai SDK's
own types (no model: the events are what the reply assembler hands over)."""

from __future__ import annotations

import json
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from app.core.server.reasoning import Answer, Reasoning
from app.core.server.responses_output import ResponseOutput
from app.core.server.tool_calls import ToolCall

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CALL = ToolCall("abcDEF123", "get_weather", json.dumps({"city": "Paris", "note": "x" * 60}))


def _validated(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for n, event in enumerate(events):
        EVENTS.validate_python({**event, "sequence_number": n})
    return events


def _response(output: ResponseOutput, status: str) -> Response:
    return Response.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "output": output.items,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "status": status,
        }
    )


def test_items_follow_the_reply_in_order_with_their_events() -> None:
    output = ResponseOutput()
    events = output.add([Reasoning("Let me"), Reasoning(" think.")])
    events += output.add([Answer("It is "), Answer("sunny.")])
    events += output.add([CALL])
    events += output.finish("completed")
    _validated(events)
    response = _response(output, "completed")
    reasoning, message, call = response.output
    assert reasoning.type == "reasoning"
    assert reasoning.content is not None
    assert reasoning.content[0].text == "Let me think."
    assert message.type == "message"
    assert response.output_text == "It is sunny."
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == (CALL.id, CALL.name, CALL.arguments)
    assert all(item.status == "completed" for item in response.output)
    kinds = [e["type"] for e in events]
    assert kinds.count("response.output_item.added") == 3
    assert kinds.count("response.output_item.done") == 3
    fragments = [
        e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"
    ]
    assert len(fragments) > 1
    assert "".join(fragments) == CALL.arguments
    deltas = [e["delta"] for e in events if e["type"] == "response.reasoning_text.delta"]
    assert "".join(deltas) == "Let me think."
    # Each added event shows the item as it was then, not as it ended.
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert [a["item"]["status"] for a in added] == ["in_progress"] * 3
    assert added[2]["item"]["arguments"] == ""


def test_a_reply_cut_short_leaves_its_last_item_incomplete() -> None:
    output = ResponseOutput()
    _validated(output.add([Answer("One, two")]) + output.finish("incomplete"))
    (message,) = _response(output, "incomplete").output
    assert message.status == "incomplete"


def test_an_empty_reply_or_thinking_alone_still_has_a_message() -> None:
    empty = ResponseOutput()
    _validated(empty.finish("completed"))
    assert _response(empty, "completed").output_text == ""
    thinking = ResponseOutput()
    _validated(thinking.add([Reasoning("hmm")]) + thinking.finish("incomplete"))
    reasoning, message = _response(thinking, "incomplete").output
    assert reasoning.status == "incomplete"  # cut short while thinking
    assert message.type == "message"
    assert message.status == "incomplete"
