"""Request bodies of the Anthropic Messages dialect, and their translation into the chat the
engine takes (lenient where clients differ: unknown fields are ignored).

Content blocks arrive as plain objects and are checked here one by one, so a wrong block gets a
400 naming where it is (``messages.2.content.1``) rather than a wall of union-validation noise.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.engine.request import ChatMessage, Sampling
from app.core.server.errors import ApiError
from app.core.server.schemas import SamplingFields, nesting_checked, template_tool_call

# Anthropic's own cap on stop sequences is far higher; the engine checks each one per token.
MAX_STOP_SEQUENCES = 16
# Blocks a local text model cannot read: refused, never dropped (the reply would be about
# something the model never saw).
UNREADABLE_BLOCKS = frozenset({"image", "document", "search_result", "container_upload"})
# Earlier replies' reasoning: templates leave it out of the prompt, so it is dropped here too.
REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlockIn(_Lenient):
    type: Literal["text"]
    text: str


class AnthropicMessageIn(_Lenient):
    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class AnthropicTool(_Lenient):
    # Absent or "custom": a client-side tool. Anything else names one of Anthropic's server
    # tools (web search, code execution), which only Anthropic runs.
    type: str | None = None
    name: str = Field(min_length=1, max_length=256)
    description: str | None = None
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class AnthropicToolChoice(_Lenient):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None


class CountTokensBody(_Lenient):
    """What decides a request's prompt: ``/v1/messages/count_tokens`` takes exactly this."""

    model: str
    messages: list[AnthropicMessageIn] = Field(min_length=1)
    system: str | list[TextBlockIn] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None

    @field_validator("tools")
    @classmethod
    def _tools_nesting(cls, value: list[AnthropicTool] | None) -> list[AnthropicTool] | None:
        for tool in value or ():
            nesting_checked(tool.input_schema, "tools")
        return value

    def openai_tools(self) -> list[dict[str, Any]] | None:
        """The tools as function tools, the one shape the tool planner takes."""
        if self.tools is None:
            return None
        functions: list[dict[str, Any]] = []
        for i, tool in enumerate(self.tools):
            if tool.type not in (None, "custom"):
                raise ApiError(
                    400,
                    f"tools.{i}: {tool.type!r} is one of Anthropic's server tools, which only "
                    "Anthropic runs; define it as a custom tool with an input_schema",
                    param=f"tools.{i}.type",
                )
            function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema}
            if tool.description:
                function["description"] = tool.description
            functions.append({"type": "function", "function": function})
        return functions

    def openai_tool_choice(self) -> str | dict[str, Any] | None:
        choice = self.tool_choice
        if choice is None:
            return None
        if choice.type == "tool":
            if not choice.name:
                raise ApiError(400, "tool_choice of type 'tool' needs a name", param="tool_choice")
            return {"type": "function", "function": {"name": choice.name}}
        return {"auto": "auto", "any": "required", "none": "none"}[choice.type]

    def chat_messages(self) -> tuple[ChatMessage, ...]:
        """The conversation as chat messages: ``system`` first, tool results as tool messages."""
        chat: list[ChatMessage] = []
        system = self._system_text()
        if system:
            chat.append(ChatMessage(role="system", content=system))
        tool_names: dict[str, str] = {}  # tool_use id -> name, for the results that answer them
        for i, message in enumerate(self.messages):
            where = f"messages.{i}.content"
            if isinstance(message.content, str):
                chat.append(ChatMessage(role=message.role, content=message.content))
            elif message.role == "assistant":
                chat.append(_assistant_message(message.content, where, tool_names))
            else:
                chat.extend(_user_messages(message.content, where, tool_names))
        if self.messages[-1].role == "assistant":
            raise ApiError(
                400,
                "the last message must be the user's: continuing a partial assistant reply "
                "(prefill) is not supported",
                param="messages",
            )
        return tuple(chat)

    def _system_text(self) -> str:
        if self.system is None or isinstance(self.system, str):
            return self.system or ""
        return "\n\n".join(block.text for block in self.system if block.text)


class MessagesBody(CountTokensBody):
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = Field(default=None, max_length=MAX_STOP_SEQUENCES)
    # Anthropic's own ranges.
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    stream: bool = False
    # Accepted and not used: a model thinks when its template opens <think>, and the usage
    # ledger names the client from its User-Agent.
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None

    def stops(self) -> tuple[str, ...]:
        return tuple(self.stop_sequences or ())

    def sampling(self) -> Sampling:
        # The same defaults as the other dialects for whatever the client leaves out.
        return SamplingFields(
            temperature=self.temperature, top_p=self.top_p, top_k=self.top_k
        ).sampling()


def _text_of(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise ApiError(400, f"{where}.text must be a string", param=f"{where}.text")
    return text


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise ApiError(400, f"{where} must be a content block with a type", param=where)
    kind: str = block["type"]
    if kind in UNREADABLE_BLOCKS:
        raise ApiError(
            400,
            f"{where}: {kind} blocks are not supported: this model reads text only",
            param=where,
        )
    return kind


def _unsupported(kind: str, where: str, role: str) -> ApiError:
    return ApiError(
        400, f"{where}: {kind!r} blocks are not supported in a {role} message", param=where
    )


def _assistant_message(
    blocks: list[dict[str, Any]], where: str, tool_names: dict[str, str]
) -> ChatMessage:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.{j}"
        kind = _block_type(block, at)
        if kind == "text":
            texts.append(_text_of(block, at))
        elif kind == "tool_use":
            ident, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if not isinstance(ident, str) or not isinstance(name, str):
                raise ApiError(400, f"{at}: a tool_use block needs an id and a name", param=at)
            if not isinstance(arguments, dict):
                raise ApiError(400, f"{at}.input must be an object", param=f"{at}.input")
            tool_names[ident] = name
            call = {
                "id": ident,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            try:
                calls.append(template_tool_call(call))
            except ValueError as exc:
                raise ApiError(400, f"{at}: {exc}", param=at) from exc
        elif kind not in REASONING_BLOCKS:
            raise _unsupported(kind, at, "assistant")
    extra: dict[str, Any] = {"tool_calls": calls} if calls else {}
    return ChatMessage(role="assistant", content="".join(texts), extra=extra)


def _user_messages(
    blocks: list[dict[str, Any]], where: str, tool_names: dict[str, str]
) -> list[ChatMessage]:
    """A user turn's blocks in order: each tool result its own tool message, text between them
    gathered into user messages."""
    out: list[ChatMessage] = []
    texts: list[str] = []

    def flush_text() -> None:
        if texts:
            out.append(ChatMessage(role="user", content="".join(texts)))
            texts.clear()

    for j, block in enumerate(blocks):
        at = f"{where}.{j}"
        kind = _block_type(block, at)
        if kind == "text":
            texts.append(_text_of(block, at))
        elif kind == "tool_result":
            ident = block.get("tool_use_id")
            if not isinstance(ident, str):
                raise ApiError(400, f"{at}.tool_use_id must be a string", param=f"{at}.tool_use_id")
            flush_text()
            content = _tool_result_text(block.get("content", ""), at)
            if block.get("is_error") is True:
                content = f"Error: {content}"
            out.append(
                ChatMessage(
                    role="tool",
                    content=content,
                    name=tool_names.get(ident),
                    extra={"tool_call_id": ident},
                )
            )
        else:
            raise _unsupported(kind, at, "user")
    flush_text()
    return out


def _tool_result_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise ApiError(
            400, f"{where}.content must be a string or text blocks", param=f"{where}.content"
        )
    texts: list[str] = []
    for k, block in enumerate(content):
        at = f"{where}.content.{k}"
        kind = _block_type(block, at)
        if kind != "text":
            raise _unsupported(kind, at, "tool_result")
        texts.append(_text_of(block, at))
    return "\n".join(texts)
