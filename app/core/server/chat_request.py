"""A chat request as the engine takes it, built the same way for both dialects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.engine.request import ChatMessage, GenerationRequest, Sampling
from app.core.engine.result import ModelInfo
from app.core.server.reply import ReplyAssembler
from app.core.server.tool_choice import ToolPlan, plan_tools


@dataclass(frozen=True)
class ChatJob:
    request: GenerationRequest
    plan: ToolPlan
    starts_thinking: bool

    def assembler(self) -> ReplyAssembler:
        return ReplyAssembler(starts_thinking=self.starts_thinking, tool_names=self.plan.names)


def chat_job(
    info: ModelInfo,
    messages: Sequence[ChatMessage],
    *,
    tools: Sequence[Any] | None,
    tool_choice: Any,
    format_grammar: str | None,
    max_tokens: int | None,
    stop: tuple[str, ...],
    sampling: Sampling,
    client: str,
) -> ChatJob:
    plan = plan_tools(tools, tool_choice, info.supports_tools)
    request = GenerationRequest(
        messages=plan.apply(messages),
        max_tokens=max_tokens,
        stop=stop,
        sampling=sampling,
        tools=plan.template_tools,
        # A forced call's grammar wins over a response format: the reply must be the call.
        grammar=plan.grammar or format_grammar,
        show_control_tokens=bool(plan.names),
        source="api",
        client=client,
    )
    # A grammar shapes the reply from its first token, so a template that opens <think> gets
    # no thinking then: the reply is the call or the document, never reasoning text.
    starts_thinking = info.opens_thinking and request.grammar is None
    return ChatJob(request=request, plan=plan, starts_thinking=starts_thinking)
