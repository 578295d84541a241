"""The conversation as a document: Markdown replies, highlighted code with Copy, reasoning folded.

Finished messages are laid out once; while a reply streams only its own block at the end of the
document is replaced (at most a few times a second, the page throttles), so a long conversation
does not make streaming slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import (
    QFont,
    QGuiApplication,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextFrameFormat,
)
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.core.chats.conversation import Message
from app.core.chats.reply_text import split_fences, split_reasoning
from app.gui.chat.code_highlight import CodeFormats
from app.gui.theme import is_dark, muted

STREAM_KEY = "stream"
_STATUS_NOTES = {
    "cancelled": "stopped",
    "interrupted": "interrupted: Homefire closed while this reply was being written",
    "error": "failed",
}


@dataclass
class _Stream:
    text: str
    model: str


def stats_line(message: Message) -> str:
    """Measured figures under a reply: tokens, time to first token, decode speed."""
    stats = message.stats
    parts: list[str] = []
    if stats is not None:
        parts.append(f"{stats.completion_tokens:,} tokens")
        if stats.time_to_first_token_s is not None:
            parts.append(f"first token {stats.time_to_first_token_s:.2f} s")
        if stats.tokens_per_s is not None:
            parts.append(f"{stats.tokens_per_s:.1f} tok/s")
        if stats.finish_reason == "length":
            parts.append("cut at the token limit")
    line = ("measured: " + " · ".join(parts)) if parts else ""
    note = _STATUS_NOTES.get(message.status)
    if note:
        line = f"{line} · {note}" if line else note
    if message.error:
        line = f"{line}: {message.error}"
    return line


class TranscriptView(QTextBrowser):
    edit_requested = Signal(int)  # message id
    regenerate_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("transcript")
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.setFrameShape(QTextBrowser.Shape.NoFrame)
        self.document().setDocumentMargin(18)
        self.setPlaceholderText(
            "Ask anything. Enter sends, Shift+Enter adds a line, Esc stops a reply."
        )
        self.anchorClicked.connect(self._on_self_anchor_clicked)
        self._messages: list[Message] = []
        self._assistant_name = "Assistant"
        self._stream: _Stream | None = None
        self._stream_pos = 0
        self._copyable: list[str] = []
        self._copyable_stream_start = 0
        self._expanded: set[str] = set()
        self._code = CodeFormats(is_dark(self.palette()))

    # -- what is shown -------------------------------------------------------------------------

    def show_messages(self, messages: Sequence[Message]) -> None:
        self._messages = list(messages)
        self._stream = None
        self._rebuild()

    def begin_stream(self, model: str) -> None:
        self._stream = _Stream("", model)
        self._rebuild()

    def update_stream(self, text: str) -> None:
        if self._stream is None:
            return
        self._stream.text = text
        at_bottom = self._at_bottom()
        cursor = QTextCursor(self.document())
        cursor.setPosition(self._stream_pos)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        del self._copyable[self._copyable_stream_start :]
        self._render_stream(cursor)
        self._keep_bottom(at_bottom)

    def restyle(self) -> None:
        """The palette changed (light/dark): recolour code and text."""
        self._code = CodeFormats(is_dark(self.palette()))
        self._rebuild()

    # -- layout --------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        at_bottom = self._at_bottom()
        self.document().clear()
        self._copyable.clear()
        cursor = QTextCursor(self.document())
        last_reply = next((m.id for m in reversed(self._messages) if m.role == "assistant"), None)
        first = True
        for message in self._messages:
            self._render_message(cursor, message, message.id == last_reply, first)
            first = False
        self._stream_pos = cursor.position()
        self._copyable_stream_start = len(self._copyable)
        if self._stream is not None:
            self._render_stream(cursor, first)
        self._keep_bottom(at_bottom or self._stream is not None)

    def _render_message(
        self, cursor: QTextCursor, message: Message, last_reply: bool, first: bool
    ) -> None:
        if message.role == "user":
            self._header(cursor, "You", first, user=True)
            self._block(cursor)
            cursor.insertText(message.content, self._text_format())
            if self._stream is None:
                self._footer(cursor, "", [("Edit", f"edit:{message.id}")])
            return
        name = message.model or self._assistant_name
        self._header(cursor, name, first)
        self._reply_body(cursor, message.content, f"m{message.id}", streaming=False)
        links: list[tuple[str, str]] = [("Copy", f"copy:{len(self._copyable)}")]
        self._copyable.append(split_reasoning(message.content).answer)
        if last_reply and self._stream is None:
            links.append(("Regenerate", "regenerate:"))
        self._footer(cursor, stats_line(message), links)

    def _render_stream(self, cursor: QTextCursor, first: bool = False) -> None:
        assert self._stream is not None
        self._header(cursor, self._stream.model, first and not self._messages)
        self._reply_body(cursor, self._stream.text, STREAM_KEY, streaming=True)

    def _reply_body(self, cursor: QTextCursor, text: str, key: str, streaming: bool) -> None:
        parts = split_reasoning(text)
        if parts.reasoning is not None:
            self._reasoning(cursor, parts.reasoning, key, parts.reasoning_open and streaming)
        if not parts.answer.strip():
            if streaming and not parts.reasoning_open:
                self._block(cursor)
                cursor.insertText("▍", self._muted_format())
            return
        for segment in split_fences(parts.answer):
            if segment.kind == "code":
                self._code_block(cursor, segment.text, segment.language)
            else:
                self._block(cursor)
                cursor.insertMarkdown(segment.text)
                cursor.setCharFormat(self._text_format())
        if streaming:
            cursor.insertText(" ▍", self._muted_format())

    def _reasoning(self, cursor: QTextCursor, text: str, key: str, still_thinking: bool) -> None:
        self._block(cursor)
        expanded = key in self._expanded
        words = len(text.split())
        label = "Thinking…" if still_thinking else f"Reasoning · {words:,} words"
        arrow = "▾" if expanded else "▸"
        cursor.insertText(f"{arrow} {label} ", self._muted_format())
        cursor.insertText("hide" if expanded else "show", self._link_format(f"think:{key}"))
        if expanded:
            self._block(cursor)
            fmt = self._muted_format()
            fmt.setFontItalic(True)
            cursor.insertText(text, fmt)

    def _code_block(self, cursor: QTextCursor, code: str, language: str) -> None:
        index = len(self._copyable)
        self._copyable.append(code)
        self._block(cursor, top=6)
        small = self._muted_format()
        small.setFontPointSize(max(self.font().pointSizeF() - 1, 7.0))
        cursor.insertText(f"{language or 'code'}   ", small)
        cursor.insertText("Copy", self._link_format(f"copy:{index}"))
        frame = QTextFrameFormat()
        frame.setBackground(self._code.background)
        frame.setPadding(10)
        frame.setBorder(0)
        frame.setTopMargin(2)
        frame.setBottomMargin(4)
        cursor.insertFrame(frame)
        for text, fmt in self._code.tokens(code.rstrip("\n"), language):
            cursor.insertText(text, fmt)
        cursor.movePosition(QTextCursor.MoveOperation.End)

    def _header(self, cursor: QTextCursor, name: str, first: bool, user: bool = False) -> None:
        block = QTextBlockFormat()
        block.setTopMargin(0 if first else 16)
        if first:
            cursor.setBlockFormat(block)
        else:
            cursor.insertBlock(block, QTextCharFormat())
        fmt = self._text_format()
        fmt.setFontWeight(QFont.Weight.DemiBold)
        role = QPalette.ColorRole.Link if user else QPalette.ColorRole.WindowText
        fmt.setForeground(self.palette().color(role))
        cursor.insertText(name, fmt)

    def _footer(self, cursor: QTextCursor, text: str, links: list[tuple[str, str]]) -> None:
        self._block(cursor, top=2)
        small = self._muted_format()
        small.setFontPointSize(max(self.font().pointSizeF() - 1, 7.0))
        if text:
            cursor.insertText(text + "    ", small)
        for label, href in links:
            link = self._link_format(href)
            link.setFontPointSize(small.fontPointSize())
            cursor.insertText(label, link)
            cursor.insertText("   ", small)

    def _block(self, cursor: QTextCursor, top: int = 4) -> None:
        block = QTextBlockFormat()
        block.setTopMargin(top)
        if cursor.block().position() > 0 and not cursor.block().text():
            # The empty block a code frame leaves behind: use it rather than add a blank line.
            cursor.setBlockFormat(block)
            cursor.setCharFormat(self._text_format())
            return
        cursor.insertBlock(block, self._text_format())

    def _text_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self.palette().color(QPalette.ColorRole.Text))
        return fmt

    def _muted_format(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(muted(self.palette()))
        return fmt

    def _link_format(self, href: str) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setAnchor(True)
        fmt.setAnchorHref(href)
        fmt.setForeground(self.palette().color(QPalette.ColorRole.Link))
        return fmt

    def _at_bottom(self) -> bool:
        bar = self.verticalScrollBar()
        return bar.value() >= bar.maximum() - 8

    def _keep_bottom(self, at_bottom: bool) -> None:
        if at_bottom:
            bar = self.verticalScrollBar()
            bar.setValue(bar.maximum())

    # -- links ---------------------------------------------------------------------------------

    def _on_self_anchor_clicked(self, url: QUrl) -> None:
        kind, _, arg = url.toString().partition(":")
        if kind == "copy" and arg.isdigit() and int(arg) < len(self._copyable):
            text = self._copyable[int(arg)]
            QGuiApplication.clipboard().setText(text)
        elif kind == "edit" and arg.isdigit():
            self.edit_requested.emit(int(arg))
        elif kind == "regenerate":
            self.regenerate_requested.emit()
        elif kind == "think":
            self._expanded.symmetric_difference_update({arg})
            scroll = self.verticalScrollBar().value()
            if self._stream is not None and arg == STREAM_KEY:
                self.update_stream(self._stream.text)
            else:
                self._rebuild()
            self.verticalScrollBar().setValue(scroll)

    def copy_target(self, index: int) -> str:
        """What the ``index``-th Copy link copies (code block or reply), for tests and menus."""
        return self._copyable[index]
