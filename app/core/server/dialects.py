"""What every dialect's routes share: the model a request names and the engine serving it,
whether a requested name is the served model, the finish reason on the wire and what the request
log shows."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.applications import Starlette

from app.core.engine.engine import Engine
from app.core.engine.result import GenerationResult, ModelInfo
from app.core.errors import ModelNotLoaded
from app.core.server.errors import ApiError


@dataclass(frozen=True)
class Served:
    """A model a request may use now: its engine and what was loaded."""

    engine: Engine
    info: ModelInfo


def served_models(app: Starlette) -> list[Served]:
    """Every model served now, with its engine (today the one engine's model, if loaded)."""
    engine: Engine = app.state.engine
    info = engine.model
    return [Served(engine, info)] if info is not None else []


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def served_model(request: Request, requested: str | None, *, param: str = "model") -> Served:
    """The model ``requested`` names (none or empty: the one a client gets by default) with the
    engine serving it. Every generation, embedding and model-detail route of every dialect asks
    here, so a name means the same thing on all of them.

    Raises ``ModelNotLoaded`` when nothing is served and a 404 ``model_not_found`` for a name
    this server does not serve.
    """
    engine = engine_of(request)
    info = engine.model
    if info is None:
        raise ModelNotLoaded("no model is loaded; load one in Homefire first")
    if requested and not same_model(requested, info):
        raise ApiError(
            404,
            f"the model {requested!r} is not loaded; this server serves {info.model_id!r}",
            code="model_not_found",
            param=param,
        )
    return Served(engine, info)


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
        request.state.time_to_first_token_s = result.time_to_first_token_s
        request.state.decode_tokens_per_s = result.decode_tokens_per_s
