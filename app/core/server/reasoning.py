"""Split a reply's ``<think>…</think>`` block off its answer, as it streams.

Reasoning models either write ``<think>`` themselves or have their template open the block in
the generation prompt (then the reply starts inside it and only ``</think>`` appears). Text that
could still be the start of a tag is held back until it is decided.
"""

from __future__ import annotations

from dataclasses import dataclass

OPEN = "<think>"
CLOSE = "</think>"


@dataclass(frozen=True)
class Reasoning:
    text: str


@dataclass(frozen=True)
class Answer:
    text: str


Part = Reasoning | Answer


def _partial_suffix(buffer: str, tag: str) -> int:
    """Length of the longest end of ``buffer`` that begins ``tag``."""
    for size in range(min(len(tag) - 1, len(buffer)), 0, -1):
        if buffer.endswith(tag[:size]):
            return size
    return 0


class ThinkSplitter:
    def __init__(self, starts_inside: bool = False) -> None:
        # "start": deciding whether the reply opens with <think>; "inside"; "answer".
        self._state = "inside" if starts_inside else "start"
        self._held = ""
        self._strip_answer = starts_inside

    def feed(self, text: str) -> list[Part]:
        parts: list[Part] = []
        buffer = self._held + text
        self._held = ""
        while buffer:
            if self._state == "start":
                stripped = buffer.lstrip()
                if stripped.startswith(OPEN):
                    self._state = "inside"
                    buffer = stripped[len(OPEN) :].lstrip()
                    continue
                if OPEN.startswith(stripped):
                    self._held = buffer  # maybe the beginning of "<think>"
                    return parts
                self._state = "answer"
                continue
            if self._state == "inside":
                at = buffer.find(CLOSE)
                if at >= 0:
                    self._add(parts, Reasoning(buffer[:at]))
                    self._state = "answer"
                    self._strip_answer = True
                    buffer = buffer[at + len(CLOSE) :]
                    continue
                keep = _partial_suffix(buffer, CLOSE)
                self._add(parts, Reasoning(buffer[: len(buffer) - keep]))
                self._held = buffer[len(buffer) - keep :]
                return parts
            if self._strip_answer:
                buffer = buffer.lstrip()
                self._strip_answer = not buffer
            self._add(parts, Answer(buffer))
            return parts
        return parts

    def flush(self) -> list[Part]:
        held, self._held = self._held, ""
        if not held:
            return []
        return [Reasoning(held)] if self._state == "inside" else [Answer(held)]

    @staticmethod
    def _add(parts: list[Part], part: Part) -> None:
        if part.text:
            parts.append(part)
