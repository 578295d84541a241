"""A response's output items, grown from the reply's events, and the stream events that tell a
streaming client about each step.

Whole and streamed responses are built by the same ``ResponseOutput`` from the same events, so
they always agree: reasoning items, message items and function calls in the order the model
wrote them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from app.core.server.reasoning import Answer, Reasoning
from app.core.server.reply import ReplyEvent
from app.core.server.tool_calls import ToolCall, argument_fragments

ItemStatus = Literal["completed", "incomplete"]
Event = dict[str, Any]


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponseOutput:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        # The reasoning or message item whose text is streaming, with its one content part.
        self._open: dict[str, Any] | None = None

    def add(self, events: Sequence[ReplyEvent]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            if isinstance(event, Reasoning):
                out += self._text("reasoning", event.text)
            elif isinstance(event, Answer):
                out += self._text("message", event.text)
            else:
                out += self._close("completed")
                out += self._call(event)
        return out

    def finish(self, status: ItemStatus) -> list[Event]:
        """Close the last item (``incomplete`` when the reply was cut short). A reply with
        neither text nor calls still has its message, with empty text, as OpenAI's have."""
        out = self._close(status)
        if not any(item["type"] in ("message", "function_call") for item in self.items):
            out += self._text("message", "")
            out += self._close(status)
        return out

    def _text(self, kind: Literal["reasoning", "message"], text: str) -> list[Event]:
        out: list[Event] = []
        if self._open is None or self._open["type"] != kind:
            out += self._close("completed")
            out += self._open_item(kind)
        item = self._open
        assert item is not None
        part = item["content"][0]
        part["text"] += text
        if text:
            out.append(
                self._where(
                    item,
                    f"response.{part['type']}.delta",
                    delta=text,
                    **({"logprobs": []} if kind == "message" else {}),
                )
            )
        return out

    def _open_item(self, kind: Literal["reasoning", "message"]) -> list[Event]:
        item: dict[str, Any]
        if kind == "message":
            item = {
                "type": "message",
                "id": _item_id("msg"),
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            part: dict[str, Any] = {"type": "output_text", "text": "", "annotations": []}
        else:
            item = {
                "type": "reasoning",
                "id": _item_id("rs"),
                "status": "in_progress",
                "summary": [],
                "content": [],
            }
            part = {"type": "reasoning_text", "text": ""}
        self.items.append(item)
        added = self._item_event("response.output_item.added", item)
        item["content"].append(part)
        self._open = item
        return [added, self._where(item, "response.content_part.added", part=copy.deepcopy(part))]

    def _close(self, status: ItemStatus) -> list[Event]:
        item, self._open = self._open, None
        if item is None:
            return []
        part = item["content"][0]
        done: Event = self._where(item, f"response.{part['type']}.done", text=part["text"])
        if part["type"] == "output_text":
            done["logprobs"] = []
        item["status"] = status
        return [
            done,
            self._where(item, "response.content_part.done", part=copy.deepcopy(part)),
            self._item_event("response.output_item.done", item),
        ]

    def _call(self, call: ToolCall) -> list[Event]:
        item: dict[str, Any] = {
            "type": "function_call",
            "id": _item_id("fc"),
            "call_id": call.id,
            "name": call.name,
            "arguments": "",
            "status": "in_progress",
        }
        self.items.append(item)
        out = [self._item_event("response.output_item.added", item)]
        where = {"item_id": item["id"], "output_index": len(self.items) - 1}
        out += [
            {"type": "response.function_call_arguments.delta", **where, "delta": fragment}
            for fragment in argument_fragments(call.arguments)
        ]
        out.append(
            {"type": "response.function_call_arguments.done", **where, "arguments": call.arguments}
        )
        item["arguments"] = call.arguments
        item["status"] = "completed"
        out.append(self._item_event("response.output_item.done", item))
        return out

    def _item_event(self, kind: str, item: dict[str, Any]) -> Event:
        return {"type": kind, "output_index": self.items.index(item), "item": copy.deepcopy(item)}

    def _where(self, item: dict[str, Any], kind: str, **fields: Any) -> Event:
        return {
            "type": kind,
            "item_id": item["id"],
            "output_index": self.items.index(item),
            "content_index": 0,
            **fields,
        }
