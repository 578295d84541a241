"""Reasoning and code blocks are found in whole and in partial (streaming) replies."""

from __future__ import annotations

from app.core.chats.reply_text import Segment, split_fences, split_reasoning


def test_a_plain_reply_has_no_reasoning() -> None:
    parts = split_reasoning("Just the answer.")
    assert parts.reasoning is None
    assert parts.answer == "Just the answer."


def test_think_tags_are_separated_from_the_answer() -> None:
    parts = split_reasoning("<think>\nThe user wants 2+2.\n</think>\n\nIt is 4.")
    assert parts.reasoning == "The user wants 2+2."
    assert parts.answer == "It is 4."
    assert not parts.reasoning_open


def test_an_open_think_tag_is_reasoning_in_progress() -> None:
    parts = split_reasoning("<think>Let me see")
    assert parts.reasoning == "Let me see"
    assert parts.answer == ""
    assert parts.reasoning_open


def test_a_closing_tag_alone_means_the_template_opened_it() -> None:
    parts = split_reasoning("thinking first</think>The answer")
    assert parts.reasoning == "thinking first"
    assert parts.answer == "The answer"


def test_fenced_code_is_split_from_prose() -> None:
    text = "Here:\n\n```python\nprint('hi')\n```\n\nDone."
    assert split_fences(text) == [
        Segment("prose", "Here:"),
        Segment("code", "print('hi')", "python"),
        Segment("prose", "Done."),
    ]


def test_an_unclosed_fence_is_code_still_streaming() -> None:
    (prose, code) = split_fences("Try:\n~~~bash\nls -l")
    assert prose == Segment("prose", "Try:")
    assert code == Segment("code", "ls -l", "bash", closed=False)


def test_a_longer_fence_is_not_closed_by_a_shorter_one() -> None:
    (code,) = split_fences("````md\n```\ninner\n```\n````")
    assert code.text == "```\ninner\n```"
    assert code.closed
