"""A reply's text, as it streams, split into reasoning, answer text and tool calls.

Both dialects feed the same assembler, so a streamed reply and a whole one always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.core.server.reasoning import Answer, Reasoning, ThinkSplitter
from app.core.server.tool_calls import Text, ToolCall, ToolCallStream

ReplyEvent = Reasoning | Answer | ToolCall


@dataclass
class Reply:
    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)


class ReplyAssembler:
    def __init__(self, *, starts_thinking: bool, tool_names: Sequence[str]) -> None:
        self._think = ThinkSplitter(starts_inside=starts_thinking)
        self._tools = ToolCallStream(tool_names) if tool_names else None
        self.reply = Reply()

    def feed(self, text: str) -> list[ReplyEvent]:
        return self._route(self._think.feed(text), final=False)

    def finish(self) -> list[ReplyEvent]:
        return self._route(self._think.flush(), final=True)

    def _route(self, parts: list[Reasoning | Answer], *, final: bool) -> list[ReplyEvent]:
        events: list[ReplyEvent] = []
        for part in parts:
            if isinstance(part, Reasoning) or self._tools is None:
                events.append(part)
            else:
                events.extend(self._from_tools(self._tools.feed(part.text)))
        if final and self._tools is not None:
            events.extend(self._from_tools(self._tools.finish()))
        for event in events:
            if isinstance(event, Reasoning):
                self.reply.reasoning += event.text
            elif isinstance(event, Answer):
                self.reply.content += event.text
            else:
                self.reply.tool_calls.append(event)
        return events

    @staticmethod
    def _from_tools(events: list[Text | ToolCall]) -> list[ReplyEvent]:
        return [Answer(e.text) if isinstance(e, Text) else e for e in events]
