"""Request bodies of the OpenAI dialect, lenient where clients differ (unknown fields ignored)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.engine.request import ChatMessage, Sampling

# Objects and arrays inside tools and tool calls: real ones nest a few levels, while the chat
# template, the prompt builder and JSON encoding all recurse over them.
MAX_NESTING = 100


def nesting_checked(value: Any, what: str) -> Any:
    """``value``, unless it nests objects and arrays more than ``MAX_NESTING`` deep."""
    todo = [(value, 0)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_NESTING:
            raise ValueError(f"{what} nest more than {MAX_NESTING} levels deep")
        if isinstance(node, dict):
            todo.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            todo.extend((v, depth + 1) for v in node)
    return value


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Lenient):
    include_usage: bool = False


class ChatMessageIn(_Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def to_message(self) -> ChatMessage:
        role = {"developer": "system", "function": "tool"}.get(self.role, self.role)
        extra: dict[str, Any] = {}
        if self.tool_calls:
            extra["tool_calls"] = [template_tool_call(call) for call in self.tool_calls]
        if self.tool_call_id:
            extra["tool_call_id"] = self.tool_call_id
        return ChatMessage(role=role, content=self.text(), name=self.name, extra=extra)  # type: ignore[arg-type]

    def text(self) -> str:
        """Plain text of the message; content parts other than text are not supported yet."""
        return parts_text(self.content, "content")


# Text parts as both OpenAI APIs spell them (chat's "text", the Responses API's input and
# output text, an assistant's refusal, reasoning text).
TEXT_PARTS = ("text", "input_text", "output_text", "refusal", "summary_text", "reasoning_text")


def parts_text(content: str | list[dict[str, Any]] | None, what: str) -> str:
    """The text of a string or a list of text parts; other parts (images, files, audio) are
    refused: the models Homefire serves read text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content:
        kind = part.get("type")
        if kind not in TEXT_PARTS:
            raise ValueError(f"{what} parts of type {kind!r} are not supported by this model")
        text = part.get("text", part.get("refusal", ""))
        if not isinstance(text, str):
            raise ValueError(f"a {kind} part's text must be a string")
        texts.append(text)
    return "".join(texts)


def template_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """A tool call as chat templates expect it: ``arguments`` as an object, not JSON text."""
    function = call.get("function")
    if not isinstance(function, dict):
        return call
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except (json.JSONDecodeError, RecursionError):
            parsed = arguments
        function = {**function, "arguments": parsed}
    call = {**call, "type": call.get("type", "function"), "function": function}
    return nesting_checked(call, "tool calls")


class SamplingFields(_Lenient):
    """The sampling knobs both dialects accept (OpenAI top level, Ollama ``options``)."""

    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    repeat_penalty: float | None = Field(default=None, gt=0.0)
    seed: int | None = None
    stop: str | list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _stops_limited(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 16:
            raise ValueError("at most 16 stop sequences")
        return value

    def stops(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)

    def sampling(self) -> Sampling:
        defaults = Sampling()
        return Sampling(
            temperature=defaults.temperature if self.temperature is None else self.temperature,
            top_p=defaults.top_p if self.top_p is None else self.top_p,
            top_k=defaults.top_k if self.top_k is None else self.top_k,
            min_p=defaults.min_p if self.min_p is None else self.min_p,
            repeat_penalty=defaults.repeat_penalty
            if self.repeat_penalty is None
            else self.repeat_penalty,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            seed=self.seed,
        )


class _GenerationBody(SamplingFields):
    model: str | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = 1
    user: str | None = None
    # Token id (as a string, as OpenAI sends it) -> bias. Checked, not applied yet: the engine's
    # sampler has no per-request biases.
    logit_bias: dict[str, float] | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise ValueError("only n=1 is supported; send one request per choice")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _biases(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (value or {}).items():
            if not token.isascii() or not token.isdigit():
                raise ValueError(f"{token!r} is not a token id")
            if not -100 <= bias <= 100:
                raise ValueError("each bias must be between -100 and 100")
        return value

    def unknown_token_ids(self, n_vocab: int) -> list[int]:
        """logit_bias ids the model's vocabulary does not have."""
        return sorted(int(t) for t in self.logit_bias or {} if int(t) >= n_vocab)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatCompletionBody(_GenerationBody):
    messages: list[ChatMessageIn] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("tools")
    @classmethod
    def _tools_nesting(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return nesting_checked(value, "tools")

    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)  # OpenAI's own bounds

    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionBody(_GenerationBody):
    prompt: str | list[str]
    suffix: str | None = None
    echo: bool = False
    logprobs: int | None = Field(default=None, ge=0, le=5)  # OpenAI's own bounds

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and len(value) != 1:
            raise ValueError("exactly one prompt per request is supported")
        return value

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class EmbeddingBody(_Lenient):
    model: str | None = None
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)

    @field_validator("input")
    @classmethod
    def _bounded(cls, value: str | list[str]) -> str | list[str]:
        # The upper bound is the embedding route's, shared with the Ollama dialect.
        if isinstance(value, list) and not value:
            raise ValueError("at least one input to embed")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)
