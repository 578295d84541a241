"""Request bodies of OpenAI's Responses API, turned into the chat messages and tools the chat
route takes (so prompt building, tool calls and formats have one home each).

Homefire keeps no responses: a request carries its whole conversation in ``input``. What would
need stored state (``store: true``, ``previous_response_id``, ``conversation``, ``background``,
``item_reference``) is refused with a 400 saying so; ``store`` unset or false (what the openai
SDK and Codex send) is fine.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.core.engine.request import ChatMessage
from app.core.server.errors import ApiError
from app.core.server.schemas import (
    SamplingFields,
    nesting_checked,
    parts_text,
    template_tool_call,
)

# Items only a server that keeps responses could honour, and what each one points at.
_STATEFUL_ITEMS = {"item_reference": "a stored item"}
_MESSAGE_ROLES = {"developer": "system"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InputItem(_Lenient):
    """One ``input`` item: a message (``type`` may be left out), a function call the model made
    earlier, its output, or an earlier reasoning item (dropped: templates drop old thinking)."""

    type: str = "message"
    role: Literal["user", "assistant", "system", "developer"] | None = None
    content: str | list[dict[str, Any]] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[dict[str, Any]] | None = None

    @model_validator(mode="after")
    def _complete(self) -> InputItem:
        if self.type in _STATEFUL_ITEMS:
            raise ValueError(
                f"{self.type} items need {_STATEFUL_ITEMS[self.type]}, and Homefire keeps no "
                "responses: send the items themselves"
            )
        if self.type == "message":
            if self.role is None:
                raise ValueError("a message item needs a role")
            parts_text(self.content, "message content")
        elif self.type == "function_call":
            if self.call_id is None or self.name is None or self.arguments is None:
                raise ValueError("a function_call item needs call_id, name and arguments")
        elif self.type == "function_call_output":
            if self.call_id is None or self.output is None:
                raise ValueError("a function_call_output item needs call_id and output")
            parts_text(self.output, "function_call_output")
        elif self.type != "reasoning":
            raise ValueError(
                f"input items of type {self.type!r} are not supported; Homefire runs function "
                "tools only (message, function_call, function_call_output and reasoning items)"
            )
        return self

    def call(self) -> dict[str, Any]:
        """This function_call as a chat message's tool call."""
        function = {"name": self.name, "arguments": self.arguments}
        return template_tool_call({"id": self.call_id, "type": "function", "function": function})


def chat_messages(
    instructions: str | None, items: str | list[InputItem]
) -> tuple[ChatMessage, ...]:
    """The conversation as chat messages: instructions first, then each item in order, with a
    run of function calls joined onto the assistant turn they belong to."""
    messages: list[ChatMessage] = []
    if instructions:
        messages.append(ChatMessage(role="system", content=instructions))
    if isinstance(items, str):
        messages.append(ChatMessage(role="user", content=items))
        return tuple(messages)
    names: dict[str, str] = {}  # call_id -> function name, for the tool turn that answers it
    for item in items:
        if item.type == "message":
            role = _MESSAGE_ROLES.get(item.role or "user", item.role or "user")
            text = parts_text(item.content, "message content")
            messages.append(ChatMessage(role=role, content=text))  # type: ignore[arg-type]
        elif item.type == "function_call":
            names[item.call_id or ""] = item.name or ""
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                calls = [*last.extra.get("tool_calls", []), item.call()]
                messages[-1] = ChatMessage(
                    role="assistant",
                    content=last.content,
                    name=last.name,
                    extra={**last.extra, "tool_calls": calls},
                )
            else:
                messages.append(
                    ChatMessage(role="assistant", content="", extra={"tool_calls": [item.call()]})
                )
        elif item.type == "function_call_output":
            messages.append(
                ChatMessage(
                    role="tool",
                    content=parts_text(item.output, "function_call_output"),
                    name=names.get(item.call_id or ""),
                    extra={"tool_call_id": item.call_id},
                )
            )
    return tuple(messages)


# Tools OpenAI's servers run themselves; a client only switches them on. Codex adds web search
# by default, so they are left out of the model's tools rather than refused.
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_2025_08_26",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "image_generation",
        "computer_use_preview",
        "mcp",
    }
)


def chat_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Responses function tools (``name`` at the top) in the chat route's shape. Hosted tools
    are left out (nothing here could run them); other kinds the client would run itself
    (``custom``, ``local_shell``) are refused, since the model could not call them."""
    if tools is None:
        return None
    converted: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type", "function")
        if kind in HOSTED_TOOLS:
            continue
        if kind != "function":
            raise ApiError(
                400,
                f"tools[{i}] is a {kind!r} tool; Homefire calls function tools only",
                param=f"tools.{i}.type",
            )
        function = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
        converted.append({"type": "function", "function": function})
    return converted


def chat_tool_choice(choice: str | dict[str, Any] | None) -> str | dict[str, Any] | None:
    """``{"type": "function", "name": ...}`` is what the chat route's planner reads already; the
    hosted tools' choices are refused like the tools themselves."""
    if isinstance(choice, dict) and choice.get("type", "function") != "function":
        raise ApiError(
            400,
            f"tool_choice of type {choice.get('type')!r} is not supported; name a function, or "
            "send 'none', 'auto' or 'required'",
            param="tool_choice",
        )
    return choice


class TextConfig(_Lenient):
    format: dict[str, Any] | None = None
    verbosity: str | None = None  # accepted; a local model has no verbosity setting


class ResponsesBody(SamplingFields):
    """``POST /v1/responses``. ``metadata``, ``user``, ``reasoning``, ``include``,
    ``prompt_cache_key``, ``truncation`` and ``service_tier`` are accepted and ignored."""

    model: str | None = None
    input: str | list[InputItem]
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    store: bool | None = None
    previous_response_id: str | None = None
    conversation: str | dict[str, Any] | None = None
    background: bool | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None

    @field_validator("metadata")
    @classmethod
    def _metadata_bounded(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        # OpenAI's own bounds: the response echoes the metadata back.
        if value and (
            len(value) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in value.items())
        ):
            raise ValueError("at most 16 pairs, keys up to 64 and values up to 512 characters")
        return value

    @field_validator("input")
    @classmethod
    def _some_input(cls, value: str | list[InputItem]) -> str | list[InputItem]:
        if isinstance(value, list) and not value:
            raise ValueError("at least one input item")
        return value

    @field_validator("tools")
    @classmethod
    def _tools_nesting(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return nesting_checked(value, "tools")

    def refuse_state(self) -> None:
        """A 400 for each field that asks Homefire to keep or find a response."""
        asks = {
            "store": self.store is True,
            "previous_response_id": self.previous_response_id is not None,
            "conversation": self.conversation is not None,
            "background": self.background is True,
        }
        for param, asked in asks.items():
            if asked:
                raise ApiError(
                    400,
                    f"{param} is not supported: Homefire's Responses endpoint is stateless and "
                    "keeps no responses; send the whole conversation in input, with store "
                    "unset or false",
                    code="unsupported_parameter",
                    param=param,
                )

    @property
    def format(self) -> dict[str, Any] | None:
        return self.text.format if self.text else None
