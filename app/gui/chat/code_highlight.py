"""Syntax colours for code blocks: Pygments tokens turned into QTextCharFormats."""

from __future__ import annotations

from functools import cache

from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.styles import get_style_by_name
from pygments.token import _TokenType
from pygments.util import ClassNotFound
from PySide6.QtGui import QColor, QFont, QFontDatabase, QTextCharFormat

LIGHT_STYLE = "default"
DARK_STYLE = "monokai"
LIGHT_BACKGROUND = "#f4f5f7"
DARK_BACKGROUND = "#15171b"


@cache
def _lexer(language: str) -> Lexer:
    try:
        return get_lexer_by_name(language or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def code_font() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class CodeFormats:
    """Character formats per token type for one Pygments style (cached as tokens are seen)."""

    def __init__(self, dark: bool) -> None:
        self._style = get_style_by_name(DARK_STYLE if dark else LIGHT_STYLE)
        self.background = QColor(DARK_BACKGROUND if dark else LIGHT_BACKGROUND)
        self._base = QTextCharFormat()
        self._base.setFont(code_font())
        self._base.setForeground(QColor("#f8f8f2" if dark else "#1f2328"))
        self._formats: dict[_TokenType, QTextCharFormat] = {}

    @property
    def base(self) -> QTextCharFormat:
        return QTextCharFormat(self._base)

    def tokens(self, code: str, language: str) -> list[tuple[str, QTextCharFormat]]:
        return [(text, self._format(kind)) for kind, text in _lexer(language).get_tokens(code)]

    def _format(self, kind: _TokenType) -> QTextCharFormat:
        found = self._formats.get(kind)
        if found is not None:
            return found
        style = self._style.style_for_token(kind)
        fmt = QTextCharFormat(self._base)
        if style.get("color"):
            fmt.setForeground(QColor("#" + style["color"]))
        if style.get("bold"):
            fmt.setFontWeight(QFont.Weight.Bold)
        if style.get("italic"):
            fmt.setFontItalic(True)
        self._formats[kind] = fmt
        return fmt
