"""Tool calls and reasoning found in model output, whole and streamed piece by piece."""

from __future__ import annotations

import json

import pytest

from app.core.server.reasoning import Answer, Reasoning, ThinkSplitter
from app.core.server.reply import ReplyAssembler
from app.core.server.tool_calls import ToolCall, ToolCallStream, parse_tool_calls

NAMES = ("get_weather", "search")


@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (
            'Let me look.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
            "\n</tool_call>",
            "Let me look.",
            [("get_weather", {"city": "Paris"})],
        ),
        (
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>\n'
            '<tool_call>{"name": "search", "arguments": {"q": "rain"}}</tool_call>',
            "",
            [("get_weather", {"city": "Oslo"}), ("search", {"q": "rain"})],
        ),
        (
            '{"name": "get_weather", "parameters": {"city": "Lima"}}',
            "",
            [("get_weather", {"city": "Lima"})],
        ),
        (
            '<|python_tag|>{"name": "search", "parameters": {"q": "x"}}',
            "",
            [("search", {"q": "x"})],
        ),
        (
            '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Rome"}}, '
            '{"name": "search", "arguments": {"q": "y"}}]',
            "",
            [("get_weather", {"city": "Rome"}), ("search", {"q": "y"})],
        ),
        (
            '[TOOL_CALLS]get_weather[ARGS]{"city": "Bern"}',
            "",
            [("get_weather", {"city": "Bern"})],
        ),
        (
            # Arguments given as JSON text are validated and normalised.
            '{"name": "search", "arguments": "{\\"q\\": \\"say \\\\\\"hi\\\\\\"\\"}"}',
            "",
            [("search", {"q": 'say "hi"'})],
        ),
    ],
)
def test_each_known_format_parses_into_calls(
    text: str, content: str, calls: list[tuple[str, dict[str, str]]]
) -> None:
    found_content, found = parse_tool_calls(text, NAMES)
    assert found_content == content
    assert [(c.name, json.loads(c.arguments)) for c in found] == calls


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Paris is mild.",
        '{"answer": 42}',  # JSON that is not a call stays the answer
        '{"name": "delete_everything", "arguments": {}}',  # not one of the offered tools
        '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>',  # broken
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Par',  # cut short
    ],
)
def test_text_that_is_not_a_valid_call_stays_text(text: str) -> None:
    content, calls = parse_tool_calls(text, NAMES)
    assert calls == []
    assert content == text


def test_nested_quotes_in_arguments_survive_as_valid_json() -> None:
    args = {"code": 'print("a \\"quoted\\" word")', "nested": {"list": [1, {"k": "v"}]}}
    text = f"<tool_call>{json.dumps({'name': 'search', 'arguments': args})}</tool_call>"
    (call,) = parse_tool_calls(text, NAMES)[1]
    assert json.loads(call.arguments) == args


@pytest.mark.parametrize(
    "text",
    [
        'Checking.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call> Done.",
        '{"name": "get_weather", "parameters": {"city": "Lima"}}',
        '[TOOL_CALLS][{"name": "search", "arguments": {"q": "y"}}]',
        "Plain answer with a < sign and [brackets] and {braces}.",
        "<tool",
    ],
)
def test_streaming_one_character_at_a_time_matches_the_whole_parse(text: str) -> None:
    stream = ToolCallStream(NAMES)
    events = [event for ch in text for event in stream.feed(ch)] + stream.finish()
    streamed_text = "".join(e.text for e in events if not isinstance(e, ToolCall))
    streamed_calls = [(e.name, e.arguments) for e in events if isinstance(e, ToolCall)]
    content, calls = parse_tool_calls(text, NAMES)
    assert [(c.name, c.arguments) for c in calls] == streamed_calls
    assert streamed_text.strip() == content.strip()


def test_a_hermes_call_is_reported_as_soon_as_its_block_closes() -> None:
    stream = ToolCallStream(NAMES)
    events = stream.feed('<tool_call>{"name": "search", "arguments": {}}</tool_call>')
    assert [type(e) for e in events] == [ToolCall]


def test_think_block_becomes_reasoning_streamed_or_whole() -> None:
    text = "<think>The user wants a greeting.</think>\n\nHello there!"
    splitter = ThinkSplitter()
    parts = [p for ch in text for p in splitter.feed(ch)] + splitter.flush()
    assert "".join(p.text for p in parts if isinstance(p, Reasoning)) == (
        "The user wants a greeting."
    )
    assert "".join(p.text for p in parts if isinstance(p, Answer)) == "Hello there!"


def test_a_template_that_opens_the_think_block_leaves_only_its_end_in_the_reply() -> None:
    splitter = ThinkSplitter(starts_inside=True)
    parts = splitter.feed("Let me think.</think>Answer.") + splitter.flush()
    assert parts == [Reasoning("Let me think."), Answer("Answer.")]


def test_text_that_only_looks_like_a_tag_start_is_released_at_the_end() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<thi") == []
    assert splitter.flush() == [Answer("<thi")]


def test_assembler_splits_reasoning_then_tool_calls() -> None:
    assembler = ReplyAssembler(starts_thinking=False, tool_names=NAMES)
    text = (
        '<think>need weather</think><tool_call>{"name": "get_weather", "arguments": {}}</tool_call>'
    )
    for ch in text:
        assembler.feed(ch)
    assembler.finish()
    assert assembler.reply.reasoning == "need weather"
    assert assembler.reply.content == ""
    assert [c.name for c in assembler.reply.tool_calls] == ["get_weather"]
