"""From a conversation to the engine's request: system prompt, history, sampling."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.chats.conversation import ChatSettings, Message
from app.core.chats.reply_text import split_reasoning
from app.core.engine.request import ChatMessage, GenerationRequest


def generation_request(
    settings: ChatSettings, history: Sequence[Message], draft: str | None = None
) -> GenerationRequest:
    """The request for the next reply: ``history`` as it stands plus an optional unsent draft.

    Earlier replies go back without their reasoning (as chat templates of reasoning models do),
    and replies with nothing in them (stopped before the first token) are left out.
    """
    messages: list[ChatMessage] = []
    if settings.system_prompt.strip():
        messages.append(ChatMessage("system", settings.system_prompt))
    for message in history:
        if message.status == "streaming":
            continue
        content = message.content
        if message.role == "assistant":
            content = split_reasoning(content).answer
            if not content.strip():
                continue
        messages.append(ChatMessage(message.role, content))
    if draft:
        messages.append(ChatMessage("user", draft))
    return GenerationRequest(
        messages=tuple(messages),
        max_tokens=settings.max_tokens,
        sampling=settings.sampling(),
        source="chat",
    )
