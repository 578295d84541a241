"""Request bodies of the Ollama dialect, lenient like Ollama (unknown fields ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.engine.request import ChatMessage
from app.core.pool.keep_alive import parse_keep_alive
from app.core.server.schemas import SamplingFields, nesting_checked, template_tool_call

_ROLES = {"system", "user", "assistant", "tool"}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OllamaOptions(SamplingFields):
    # Larger than the loaded context: the model is reloaded at this context when it fits.
    num_ctx: int | None = None
    num_predict: int | None = None

    def context(self) -> int | None:
        # Zero or negative: not asked for (Ollama then keeps its default).
        return self.num_ctx if self.num_ctx and self.num_ctx > 0 else None

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


class _KeepAlive(_Lenient):
    # Seconds or a duration ("5m"); 0 unloads once the request ends, negative keeps forever.
    keep_alive: float | None = None

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return parse_keep_alive(value)

    def keep_alive_s(self) -> float | None:
        return self.keep_alive


class OllamaBody(_KeepAlive):
    model: str = ""
    format: str | dict[str, Any] | None = None
    options: OllamaOptions = Field(default_factory=OllamaOptions)
    stream: bool = True
    think: Any = None  # accepted; reasoning is split out whenever the model writes it


class OllamaChatBody(OllamaBody):
    messages: list[OllamaMessage] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None

    @field_validator("tools")
    @classmethod
    def _tools_nesting(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return nesting_checked(value, "tools")


class OllamaGenerateBody(OllamaBody):
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    raw: bool = False
    images: list[str] | None = None


class OllamaEmbedBody(_KeepAlive):
    model: str = ""
    input: str | list[str]
    truncate: bool = True

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
