"""Turn rendered prompt pieces into tokens: control tokens only where the template put them.

Tokenizing each piece apart would change tokens at the seams ("User: " + "What" is not
"User: What"), so plain text is joined into runs and tokenized whole, and only the control tokens
the template itself wrote (``<start_of_turn>``, ``<|im_start|>``, ``<bos>``...) are parsed as
special. Users' text is always in the plain runs: what they type stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from app.core.engine.chat_template import PromptPiece


class Tokenizer(Protocol):
    def tokenize(self, text: str, *, special: bool) -> list[int]: ...
    def token_text(self, token: int) -> str: ...
    def is_control(self, token: int) -> bool: ...


def _template_segments(tokenizer: Tokenizer, text: str) -> list[tuple[str, bool]]:
    """Split template text into (text, is_control_token) segments."""
    controls = {
        tokenizer.token_text(token)
        for token in tokenizer.tokenize(text, special=True)
        if tokenizer.is_control(token)
    }
    controls.discard("")
    if not controls:
        return [(text, False)]
    pattern = "|".join(re.escape(c) for c in sorted(controls, key=len, reverse=True))
    segments: list[tuple[str, bool]] = []
    at = 0
    for match in re.finditer(pattern, text):
        if match.start() > at:
            segments.append((text[at : match.start()], False))
        segments.append((match.group(), True))
        at = match.end()
    if at < len(text):
        segments.append((text[at:], False))
    return segments


def tokenize_pieces(tokenizer: Tokenizer, pieces: Sequence[PromptPiece]) -> list[int]:
    tokens: list[int] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            tokens.extend(tokenizer.tokenize("".join(plain), special=False))
            plain.clear()

    for piece in pieces:
        segments = (
            _template_segments(tokenizer, piece.text) if piece.trusted else [(piece.text, False)]
        )
        for text, is_control in segments:
            if is_control:
                flush()
                tokens.extend(tokenizer.tokenize(text, special=True))
            else:
                plain.append(text)
    flush()
    return tokens
