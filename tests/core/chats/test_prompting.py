"""The request for the next reply carries the system prompt, sampling and clean history."""

from __future__ import annotations

from datetime import UTC, datetime

from app.core.chats.conversation import ChatSettings, Message
from app.core.chats.prompting import generation_request

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _msg(i: int, role: str, content: str, status: str = "complete") -> Message:
    return Message(i, 1, role, content, status, NOW)  # type: ignore[arg-type]


def test_history_goes_back_without_reasoning_or_empty_replies() -> None:
    settings = ChatSettings(system_prompt="Be brief.", temperature=0.1, max_tokens=64)
    history = [
        _msg(1, "user", "a"),
        _msg(2, "assistant", "<think>hmm</think>A"),
        _msg(3, "user", "b"),
        _msg(4, "assistant", "", "cancelled"),
    ]
    request = generation_request(settings, history, draft="c")
    assert request.messages is not None
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "a"),
        ("assistant", "A"),
        ("user", "b"),
        ("user", "c"),
    ]
    assert request.sampling.temperature == 0.1
    assert request.max_tokens == 64
    assert request.source == "chat"
