"""A reply's events become Anthropic content blocks, streamed and whole alike."""

from __future__ import annotations

import json

from app.core.server.anthropic_stream import ContentBlocks, sse
from app.core.server.reasoning import Answer, Reasoning
from app.core.server.tool_calls import ToolCall


def test_blocks_open_grow_and_close_in_order_across_kinds() -> None:
    blocks = ContentBlocks()
    call = ToolCall("abcdefghi", "get_weather", json.dumps({"city": "Paris" * 10}))
    events = [
        *blocks.add([Reasoning("hm"), Reasoning("m")]),
        *blocks.add([Answer("Let me "), Answer("check.")]),
        *blocks.add([call, Answer("Done")]),
        *blocks.finish(),
    ]
    assert blocks.blocks == [
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "text", "text": "Let me check."},
        {
            "type": "tool_use",
            "id": "abcdefghi",
            "name": "get_weather",
            "input": {"city": "Paris" * 10},
        },
        {"type": "text", "text": "Done"},
    ]
    # Every block is started, then only its own deltas, then stopped, before the next opens.
    open_index = None
    rebuilt: dict[int, str] = {}
    for event in events:
        if event["type"] == "content_block_start":
            assert open_index is None
            open_index = event["index"]
            rebuilt[open_index] = ""
        elif event["type"] == "content_block_delta":
            assert event["index"] == open_index
            delta = event["delta"]
            rebuilt[open_index] += (
                delta.get("text") or delta.get("thinking") or delta["partial_json"]
            )
        else:
            assert event["type"] == "content_block_stop"
            assert event["index"] == open_index
            open_index = None
    assert open_index is None
    assert sorted(rebuilt) == [0, 1, 2, 3]
    assert json.loads(rebuilt[2]) == {"city": "Paris" * 10}
    assert len([e for e in events if e["index"] == 2]) > 3  # the input streamed in fragments


def test_an_empty_reply_is_one_empty_text_block() -> None:
    blocks = ContentBlocks()
    events = blocks.finish()
    assert blocks.blocks == [{"type": "text", "text": ""}]
    assert [e["type"] for e in events] == ["content_block_start", "content_block_stop"]


def test_events_are_framed_with_their_type_as_the_event_name() -> None:
    frame = sse({"type": "content_block_delta", "index": 0, "delta": {"text": "é\n"}})
    name, data, end = frame.decode().split("\n", 2)
    assert name == "event: content_block_delta"
    assert json.loads(data.removeprefix("data: "))["delta"]["text"] == "é\n"
    assert end == "\n"
