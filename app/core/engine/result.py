"""What the engine reports about a loaded model and a finished generation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class ModelInfo:
    model_id: str
    path: Path
    n_ctx: int
    n_ctx_train: int
    architecture: str | None
    n_params: int | None
    size_bytes: int
    has_chat_template: bool
    template_source: str  # "gguf" or the name of the fallback used
    load_s: float
    rss_growth_bytes: int | None  # measured resident-memory growth over the load
    # What the chat template and vocabulary can do, probed at load (for /api/show, tool calls).
    supports_tools: bool = False  # the template renders a tool list it is given
    supports_fim: bool = False  # the vocabulary has FIM prefix, suffix and middle tokens
    opens_thinking: bool = False  # the generation prompt ends inside "<think>"
    n_gpu_layers: int = 0
    n_vocab: int = 0  # tokens in the vocabulary (bounds the token ids a client may name)
    parallel: int = 1  # sequence slots: requests decoded together
    metadata: dict[str, str] = field(default_factory=dict)  # the GGUF's scalar key/values


@dataclass(frozen=True)
class EmbeddingResult:
    vectors: list[list[float]]
    model_id: str
    prompt_tokens: int
    duration_s: float


@dataclass(frozen=True)
class GenerationResult:
    text: str
    model_id: str
    prompt_tokens: int
    cached_prompt_tokens: int  # prompt tokens reused from the previous request's KV cache
    completion_tokens: int
    finish_reason: FinishReason
    time_to_first_token_s: float | None  # from the job's start on the engine thread
    prompt_s: float
    decode_s: float
    queued_s: float  # waiting in the engine's queue before starting
    # The most sequences decoded in one step together with this one (1: it ran alone).
    max_concurrent: int = 1
    # The stop string that ended the reply (a request's own or the template's), if one did.
    stop_sequence: str | None = None
    # Part of a fill-in-the-middle prompt (other files, code far from the cursor) was left out
    # to fit the context.
    prompt_truncated: bool = False

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens after the first ÷ the time they took; None below two tokens."""
        if self.completion_tokens < 2 or self.decode_s <= 0:
            return None
        return (self.completion_tokens - 1) / self.decode_s
