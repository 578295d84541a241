"""A reply as Anthropic's content blocks, and the stream events that build them.

The reply assembler's events (reasoning, answer text, tool calls) become ``thinking``, ``text``
and ``tool_use`` blocks. The same ``ContentBlocks`` serves a streamed reply and a whole one, so
the two always agree: a whole reply is its stream's blocks without the events.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from app.core.server.reasoning import Reasoning
from app.core.server.reply import ReplyEvent
from app.core.server.tool_calls import ToolCall, argument_fragments

StreamEvent = dict[str, Any]


def sse(event: StreamEvent) -> bytes:
    """One server-sent event, named by its type as Anthropic's stream names them."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def _start(index: int, block: dict[str, Any]) -> StreamEvent:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> StreamEvent:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _stop(index: int) -> StreamEvent:
    return {"type": "content_block_stop", "index": index}


class ContentBlocks:
    """The reply's blocks as its events arrive, with the stream events that open, grow and
    close each one. A text or thinking block stays open while events of its kind follow."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self._open: str | None = None  # "text" or "thinking": the kind of the open block

    def add(self, events: Sequence[ReplyEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            if isinstance(event, ToolCall):
                out.extend(self._tool_use(event))
                continue
            kind = "thinking" if isinstance(event, Reasoning) else "text"
            if self._open != kind:
                out.extend(self._close())
                empty = {"type": "thinking", "thinking": "", "signature": ""}
                self.blocks.append(empty if kind == "thinking" else {"type": "text", "text": ""})
                out.append(_start(len(self.blocks) - 1, dict(self.blocks[-1])))
                self._open = kind
            # A block's text lives under its own kind's name ("text" or "thinking").
            self.blocks[-1][kind] += event.text
            out.append(_delta(len(self.blocks) - 1, {"type": f"{kind}_delta", kind: event.text}))
        return out

    def finish(self) -> list[StreamEvent]:
        """Close the open block; a reply with no block at all gets one empty text block."""
        out = self._close()
        if not self.blocks:
            self.blocks.append({"type": "text", "text": ""})
            out.extend([_start(0, {"type": "text", "text": ""}), _stop(0)])
        return out

    def _tool_use(self, call: ToolCall) -> list[StreamEvent]:
        out = self._close()
        index = len(self.blocks)
        block = {"type": "tool_use", "id": call.id, "name": call.name}
        self.blocks.append({**block, "input": call.arguments_object()})
        # The input streams as JSON text; the block opens with an empty object, as Anthropic's.
        out.append(_start(index, {**block, "input": {}}))
        out.extend(
            _delta(index, {"type": "input_json_delta", "partial_json": fragment})
            for fragment in argument_fragments(call.arguments)
        )
        out.append(_stop(index))
        return out

    def _close(self) -> list[StreamEvent]:
        if self._open is None:
            return []
        self._open = None
        return [_stop(len(self.blocks) - 1)]
