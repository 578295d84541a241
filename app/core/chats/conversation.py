"""What a chat is made of: conversations, their messages, per-conversation settings, reply stats."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.core.engine.request import Role, Sampling

# "streaming": a reply being written (checkpointed as it grows); "interrupted": the process died
# while it streamed; "cancelled": the user pressed Stop; "error": the engine failed mid-way.
MessageStatus = Literal["complete", "streaming", "cancelled", "interrupted", "error"]
DEFAULT_TITLE = "New chat"
TITLE_CHARS = 48


@dataclass(frozen=True)
class ChatSettings:
    """The system prompt and sampling one conversation uses (defaults: the engine's)."""

    system_prompt: str = ""
    temperature: float = Sampling.temperature
    top_p: float = Sampling.top_p
    top_k: int = Sampling.top_k
    min_p: float = Sampling.min_p
    repeat_penalty: float = Sampling.repeat_penalty
    max_tokens: int | None = None  # None: until the model stops or the context is full
    seed: int | None = None
    # The model this conversation talks to (a library name); None: the model loaded last.
    model: str | None = None

    def sampling(self) -> Sampling:
        return Sampling(
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            repeat_penalty=self.repeat_penalty,
            seed=self.seed,
        )

    def to_json(self) -> dict[str, Any]:
        """Only what differs from the defaults, so new defaults reach old conversations."""
        defaults = asdict(ChatSettings())
        return {k: v for k, v in asdict(self).items() if v != defaults[k]}

    @classmethod
    def from_json(cls, raw: object) -> ChatSettings:
        """Tolerant: unknown keys are ignored and a bad value falls back to its default."""
        if not isinstance(raw, dict):
            return cls()
        known = {
            "system_prompt": str,
            "temperature": float,
            "top_p": float,
            "top_k": int,
            "min_p": float,
            "repeat_penalty": float,
            "max_tokens": int,
            "seed": int,
            "model": str,
        }
        values: dict[str, Any] = {}
        for key, kind in known.items():
            value = raw.get(key)
            if value is None:
                continue
            if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
                values[key] = float(value)
            elif isinstance(value, kind) and not isinstance(value, bool):
                values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class ReplyStats:
    """Measured by the engine for one reply (GenerationResult), shown under it."""

    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float | None
    tokens_per_s: float | None
    finish_reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: object) -> ReplyStats | None:
        if not isinstance(raw, dict):
            return None
        try:
            return cls(
                prompt_tokens=int(raw["prompt_tokens"]),
                completion_tokens=int(raw["completion_tokens"]),
                time_to_first_token_s=_optional_float(raw.get("time_to_first_token_s")),
                tokens_per_s=_optional_float(raw.get("tokens_per_s")),
                finish_reason=str(raw.get("finish_reason", "stop")),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _optional_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Message:
    id: int
    conversation_id: int
    role: Role
    content: str
    status: MessageStatus
    created_at: datetime
    model: str | None = None
    stats: ReplyStats | None = None
    error: str | None = None


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    created_at: datetime
    updated_at: datetime
    settings: ChatSettings = field(default_factory=ChatSettings)


def title_from(text: str) -> str:
    """A conversation's title from its first message: the first line, shortened at a word."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not line:
        return DEFAULT_TITLE
    if len(line) <= TITLE_CHARS:
        return line
    cut = line[:TITLE_CHARS].rsplit(" ", 1)[0] or line[:TITLE_CHARS]
    return cut.rstrip(" ,.;:") + "…"
