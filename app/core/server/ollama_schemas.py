"""Request bodies of the Ollama dialect, lenient like Ollama (unknown fields ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.engine.request import ChatMessage
from app.core.server.schemas import SamplingFields, nesting_checked, template_tool_call

_ROLES = {"system", "user", "assistant", "tool"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OllamaOptions(SamplingFields):
    num_ctx: int | None = None  # the context is fixed at load: a prompt that does not fit is 400
    num_predict: int | None = None

    def max_tokens(self) -> int | None:
        # -1: no limit, -2: fill the context; both end at the context's end here.
        return self.num_predict if self.num_predict and self.num_predict > 0 else None


class OllamaMessage(_Lenient):
    role: str
    content: str = ""
    images: list[str] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_name: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, value: str) -> str:
        if value not in _ROLES:
            raise ValueError(f"role must be one of {sorted(_ROLES)}")
        return value

    def to_message(self) -> ChatMessage:
        if self.images:
            raise ValueError("images are not supported by this model")
        extra: dict[str, Any] = {}
        if self.tool_calls:
            extra["tool_calls"] = [template_tool_call(call) for call in self.tool_calls]
        return ChatMessage(role=self.role, content=self.content, name=self.tool_name, extra=extra)  # type: ignore[arg-type]


class _OllamaBody(_Lenient):
    model: str = ""
    format: str | dict[str, Any] | None = None
    options: OllamaOptions = Field(default_factory=OllamaOptions)
    stream: bool = True
    keep_alive: Any = None  # accepted; the model stays loaded until the user unloads it
    think: Any = None  # accepted; reasoning is split out whenever the model writes it


class OllamaChatBody(_OllamaBody):
    messages: list[OllamaMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None

    @field_validator("tools")
    @classmethod
    def _tools_nesting(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return nesting_checked(value, "tools")


class OllamaGenerateBody(_OllamaBody):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    raw: bool = False
    images: list[str] | None = None


class OllamaEmbedBody(_Lenient):
    model: str = ""
    input: str | list[str]
    truncate: bool = True
    keep_alive: Any = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class OllamaEmbeddingsBody(_Lenient):
    model: str = ""
    prompt: str


class OllamaShowBody(_Lenient):
    model: str | None = None
    name: str | None = None  # older clients (Continue) send "name"

    def wanted(self) -> str:
        return self.model or self.name or ""
