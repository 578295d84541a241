"""Responses ``input`` items become the chat messages the chat route renders (no model)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.engine.request import ChatMessage
from app.core.server.responses_schemas import ResponsesBody, chat_messages


def _messages(body: dict[str, object]) -> tuple[ChatMessage, ...]:
    parsed = ResponsesBody.model_validate(body)
    return chat_messages(parsed.instructions, parsed.input)


def test_a_string_input_is_one_user_turn_after_the_instructions() -> None:
    assert _messages({"input": "Hi", "instructions": "Be brief."}) == (
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    )


def test_a_tool_round_trip_becomes_one_assistant_turn_and_its_tool_answers() -> None:
    messages = _messages(
        {
            "input": [
                {"role": "developer", "content": [{"type": "input_text", "text": "Rules"}]},
                {"type": "message", "role": "user", "content": "Weather in Paris and Oslo?"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
                },
                {"type": "function_call", "call_id": "a1", "name": "w", "arguments": '{"c": 1}'},
                {"type": "function_call", "call_id": "b2", "name": "t", "arguments": ""},
                {"type": "function_call_output", "call_id": "a1", "output": "Sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "b2",
                    "output": [{"type": "input_text", "text": "12:00"}],
                },
            ]
        }
    )
    system, user, assistant, first, second = messages
    assert (system.role, system.content) == ("system", "Rules")
    assert (user.role, user.content) == ("user", "Weather in Paris and Oslo?")
    assert (assistant.role, assistant.content) == ("assistant", "Checking.")
    calls = assistant.extra["tool_calls"]
    assert [c["id"] for c in calls] == ["a1", "b2"]
    # Templates take arguments as objects, as in the chat route.
    assert [c["function"]["arguments"] for c in calls] == [{"c": 1}, {}]
    assert (first.role, first.content, first.name, first.extra) == (
        "tool",
        "Sunny",
        "w",
        {"tool_call_id": "a1"},
    )
    assert (second.content, second.name) == ("12:00", "t")


def test_a_call_with_no_assistant_text_opens_an_assistant_turn() -> None:
    _, assistant = _messages(
        {
            "input": [
                {"role": "user", "content": "Go"},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ]
        }
    )
    assert (assistant.role, assistant.content) == ("assistant", "")
    assert assistant.extra["tool_calls"][0]["function"]["name"] == "f"


@pytest.mark.parametrize(
    "item",
    [
        {"type": "item_reference", "id": "msg_1"},
        {"type": "computer_call", "id": "cc_1"},
        {"role": "user", "content": [{"type": "input_file", "file_id": "f"}]},
        {"type": "function_call_output", "output": "x"},
        {"type": "message"},
    ],
)
def test_items_homefire_cannot_honour_are_refused(item: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ResponsesBody.model_validate({"input": [item]})
