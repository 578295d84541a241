"""What callers ask the engine for: chat and raw-completion requests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str
    name: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # tool_calls, tool_call_id, ...


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class ContextFile:
    """Text from another file of the project, given to fill-in-the-middle as context (what an
    editor plugin gathered from open buffers, yanks and saves)."""

    filename: str
    text: str


@dataclass(frozen=True)
class GenerationRequest:
    """Either ``messages`` (chat, rendered with the model's template) or ``prompt`` (raw text)."""

    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    max_tokens: int | None = None  # None: until a stop, or the context is full; 0: read only
    stop: tuple[str, ...] = ()
    sampling: Sampling = field(default_factory=Sampling)
    # Raw prompts from clients that wrap FIM or template tokens themselves parse special tokens.
    prompt_special_tokens: bool = False
    source: str = "chat"  # "chat" or "api", for the usage ledger
    client: str | None = None
    # Fill-in-the-middle: with ``prompt`` as the code before the cursor, the engine wraps both in
    # the model's own FIM tokens (llama-cpp-python's suffix path uses token id 0 for them).
    suffix: str | None = None
    # With a suffix: other files' text before the FIM prefix, dropped first when the context is
    # short (oldest first), as repository context where the vocabulary has the tokens for it.
    context_files: tuple[ContextFile, ...] = ()
    # OpenAI-style tool definitions, handed to the chat template as ``tools``.
    tools: tuple[dict[str, Any], ...] = ()
    # A GBNF grammar every sampled token must follow (JSON mode, forced tool calls).
    grammar: str | None = None
    # Show control tokens' text in the output (Mistral's [TOOL_CALLS], Llama's <|python_tag|>
    # are control tokens the tool-call parser needs to see).
    show_control_tokens: bool = False
    # Once this long has passed since the first token, stop at the next line break (llama.cpp's
    # t_max_predict_ms: an editor would rather show a whole line now than a block later).
    line_deadline_s: float | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a generation request needs exactly one of messages or prompt")
        if self.suffix is not None and self.prompt is None:
            raise ValueError("a suffix (fill-in-the-middle) needs a prompt, not messages")
        if self.context_files and self.suffix is None:
            raise ValueError("context files go with a suffix (fill-in-the-middle)")
