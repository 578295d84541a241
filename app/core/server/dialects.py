"""What the OpenAI and Ollama routes share: the engine behind the app, whether a requested name
is the served model, the finish reason on the wire and what the request log shows."""

from __future__ import annotations

from fastapi import Request

from app.core.engine.engine import Engine
from app.core.engine.result import GenerationResult, ModelInfo


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def same_model(requested: str, info: ModelInfo) -> bool:
    """Clients name a model by its id, its file name or its stem; Ollama ones add ``:latest``."""
    wanted = requested.strip().lower().removesuffix(":latest")
    return wanted in {info.model_id.lower(), info.path.name.lower(), info.path.stem.lower()}


def finish_reason(result: GenerationResult) -> str:
    # A cancelled generation only reaches a client that is still there at shutdown.
    return "stop" if result.finish_reason == "cancelled" else result.finish_reason


def note_usage(request: Request, model: str, result: GenerationResult | None) -> None:
    """What the request log shows for this request (the RequestLogger guard reads it)."""
    request.state.model = model
    if result is not None:
        request.state.prompt_tokens = result.prompt_tokens
        request.state.completion_tokens = result.completion_tokens
