"""Find tool calls in a model's reply, whole or as it streams.

The formats models are trained on:

- Hermes / Qwen: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` (one block per call);
- Llama 3.1+: the reply is a JSON object ``{"name": ..., "parameters": {...}}``, sometimes after
  ``<|python_tag|>``;
- Mistral: ``[TOOL_CALLS][{"name": ..., "arguments": {...}}]``, or ``[TOOL_CALLS]name[ARGS]{...}``
  in newer tokenizers;
- a bare JSON object or array of calls (our grammar-forced format for models without tools).

Arguments are validated as a JSON object before a call is reported (clients choke on broken
argument strings mid-agent); a call that does not parse stays ordinary text, so nothing is lost.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

HERMES_OPEN = "<tool_call>"
HERMES_CLOSE = "</tool_call>"
MISTRAL_MARK = "[TOOL_CALLS]"
MISTRAL_ARGS = "[ARGS]"
PYTHON_TAG = "<|python_tag|>"
MARKERS = (HERMES_OPEN, MISTRAL_MARK, PYTHON_TAG)

_HERMES_BLOCK = re.compile(
    re.escape(HERMES_OPEN) + r"(.*?)(?:" + re.escape(HERMES_CLOSE) + "|$)", re.S
)
_ID_ALPHABET = string.ascii_letters + string.digits
# Streamed arguments go out in fragments of this many characters (clients concatenate them).
ARGUMENT_FRAGMENT_CHARS = 24


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the JSON text of an object

    def arguments_object(self) -> dict[str, Any]:
        value = json.loads(self.arguments)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class Text:
    text: str


def argument_fragments(arguments: str) -> list[str]:
    """A call's JSON arguments cut into the fragments every dialect streams."""
    return [
        arguments[at : at + ARGUMENT_FRAGMENT_CHARS]
        for at in range(0, len(arguments), ARGUMENT_FRAGMENT_CHARS)
    ]


def new_call_id() -> str:
    # Nine alphanumerics: Mistral's templates refuse any other shape when the id comes back.
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))


def _call_from(value: Any, names: Sequence[str]) -> ToolCall | None:
    if not isinstance(value, dict):
        return None
    function = value.get("function")
    source = function if isinstance(function, dict) else value
    name = source.get("name")
    args = source.get("arguments", source.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return None
    if not isinstance(name, str) or not isinstance(args, dict):
        return None
    if names and name not in names:
        return None
    return ToolCall(new_call_id(), name, json.dumps(args, ensure_ascii=False))


def _json_values(text: str) -> list[Any] | None:
    """Consecutive JSON values separated by whitespace, ``;`` or ``,``; None if anything else."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n;,":
            at += 1
        if at >= len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        values.append(value)


def calls_from_json(text: str, names: Sequence[str]) -> list[ToolCall] | None:
    """The calls a JSON reply spells, or None when it is not (only) tool calls."""
    values = _json_values(text)
    if not values:
        return None
    flat: list[Any] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    calls = [_call_from(value, names) for value in flat]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def _mistral_calls(text: str, names: Sequence[str]) -> list[ToolCall] | None:
    calls: list[ToolCall] = []
    for segment in text.split(MISTRAL_MARK):
        segment = segment.strip()
        if not segment:
            continue
        if MISTRAL_ARGS in segment:
            name, _, args = segment.partition(MISTRAL_ARGS)
            call = _call_from({"name": name.strip(), "arguments": args.strip()}, names)
            if call is None:
                return None
            calls.append(call)
            continue
        found = calls_from_json(segment, names)
        if found is None:
            return None
        calls.extend(found)
    return calls or None


def parse_tool_calls(text: str, names: Sequence[str]) -> tuple[str, list[ToolCall]]:
    """(the reply's text without its calls, the calls) for a complete reply."""
    if HERMES_OPEN in text:
        calls: list[ToolCall] = []
        content: list[str] = []
        at = 0
        for match in _HERMES_BLOCK.finditer(text):
            found = calls_from_json(match.group(1), names)
            content.append(text[at : match.start()])
            if found is None:
                content.append(match.group(0))
            else:
                calls.extend(found)
            at = match.end()
        content.append(text[at:])
        return "".join(content).strip() if calls else text, calls
    if MISTRAL_MARK in text:
        before, _, after = text.partition(MISTRAL_MARK)
        found = _mistral_calls(after, names)
        if found is not None:
            return before.strip(), found
        return text, []
    body = text.strip()
    body = body.removeprefix(PYTHON_TAG).strip()
    if body[:1] in ("{", "["):
        found = calls_from_json(body, names)
        if found is not None:
            return "", found
    return text, []


def _partial_marker(buffer: str) -> int:
    best = 0
    for marker in MARKERS:
        for size in range(min(len(marker) - 1, len(buffer)), best, -1):
            if buffer.endswith(marker[:size]):
                best = size
                break
    return best


class ToolCallStream:
    """Streamed reply text in, ``Text`` and ``ToolCall`` events out.

    Text streams through until a call marker appears (a possible marker's beginning is held
    back); from there the reply is buffered. Hermes blocks are reported as each one closes, the
    other formats when the reply ends. A reply that starts with ``{`` or ``[`` is buffered whole:
    it is either tool calls or a JSON answer, known only at the end.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self._names = tuple(names)
        self._state = "start"  # "start", "text" or "calls"
        self._held = ""

    def feed(self, text: str) -> list[Text | ToolCall]:
        buffer = self._held + text
        self._held = ""
        events: list[Text | ToolCall] = []
        if self._state == "start":
            stripped = buffer.lstrip()
            if not stripped or any(m.startswith(stripped) for m in MARKERS):
                self._held = buffer
                return events
            self._state = "calls" if stripped[0] in "{[" else "text"
        if self._state == "text":
            hits = [(buffer.find(m), m) for m in MARKERS if m in buffer]
            if not hits:
                keep = _partial_marker(buffer)
                self._emit(events, buffer[: len(buffer) - keep])
                self._held = buffer[len(buffer) - keep :]
                return events
            at = min(hits)[0]
            self._emit(events, buffer[:at])
            buffer = buffer[at:]
            self._state = "calls"
        self._held = self._complete_hermes_blocks(buffer, events)
        return events

    def finish(self) -> list[Text | ToolCall]:
        held, self._held = self._held, ""
        events: list[Text | ToolCall] = []
        if self._state != "calls":
            self._emit(events, held)
            return events
        content, calls = parse_tool_calls(held, self._names)
        self._emit(events, content)
        events.extend(calls)
        return events

    def _complete_hermes_blocks(self, buffer: str, events: list[Text | ToolCall]) -> str:
        """Report the calls of the closed ``<tool_call>`` blocks at the buffer's start."""
        while True:
            stripped = buffer.lstrip()
            if not stripped.startswith(HERMES_OPEN):
                return buffer
            end = stripped.find(HERMES_CLOSE)
            if end < 0:
                return buffer
            found = calls_from_json(stripped[len(HERMES_OPEN) : end], self._names)
            if found is None:
                return buffer  # left for finish(), which keeps it as text
            events.extend(found)
            buffer = stripped[end + len(HERMES_CLOSE) :]

    @staticmethod
    def _emit(events: list[Text | ToolCall], text: str) -> None:
        if text:
            events.append(Text(text))
