"""Reading a reply's text: the reasoning part (``<think>…</think>``) and fenced code blocks.

Both work on partial text too, so a reply can be shown the same way while it streams: an open
``<think>`` is reasoning still being written, an unclosed fence is code still being written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$")


@dataclass(frozen=True)
class ReplyParts:
    reasoning: str | None  # None: the reply has no reasoning part
    answer: str
    reasoning_open: bool = False  # the model is still reasoning


def split_reasoning(text: str) -> ReplyParts:
    """Separate ``<think>…</think>`` from the answer.

    A reply with a closing tag and no opening one reasons from its first token: some chat
    templates (Qwen3, DeepSeek-R1 distills) put ``<think>`` in the prompt.
    """
    start = text.find(THINK_OPEN)
    end = text.find(THINK_CLOSE)
    if start < 0 and end < 0:
        return ReplyParts(None, text)
    if start < 0 or (0 <= end < start):
        return ReplyParts(text[:end].strip(), text[end + len(THINK_CLOSE) :].lstrip())
    body_start = start + len(THINK_OPEN)
    close = text.find(THINK_CLOSE, body_start)
    before = text[:start]
    if close < 0:
        return ReplyParts(text[body_start:].strip(), before.rstrip(), reasoning_open=True)
    answer = (before + text[close + len(THINK_CLOSE) :]).strip()
    return ReplyParts(text[body_start:close].strip(), answer)


@dataclass(frozen=True)
class Segment:
    kind: Literal["prose", "code"]
    text: str
    language: str = ""
    closed: bool = True  # False: a code block still being written


def split_fences(text: str) -> list[Segment]:
    """Prose and fenced code blocks (``` or ~~~), in order; empty prose is left out."""
    segments: list[Segment] = []
    prose: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            prose.append(lines[i])
            i += 1
            continue
        _flush_prose(prose, segments)
        fence, language = opening.group(1), opening.group(2)
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                closed = True
                i += 1
                break
            body.append(lines[i])
            i += 1
        segments.append(Segment("code", "\n".join(body), language.lower(), closed))
    _flush_prose(prose, segments)
    return segments


def _flush_prose(prose: list[str], segments: list[Segment]) -> None:
    text = "\n".join(prose).strip("\n")
    if text.strip():
        segments.append(Segment("prose", text))
    prose.clear()
