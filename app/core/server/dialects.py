"""What every dialect's routes share: the model a request names and the engine serving it,
the finish reason on the wire and what the request log shows."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import FastAPI, Request

from app.core.engine.engine import Engine
from app.core.engine.result import GenerationResult, ModelInfo
from app.core.errors import AmbiguousModel, ModelNotLoaded, UnknownModel
from app.core.pool.pool import ModelPool
from app.core.server.errors import ApiError
from app.core.server.model_holds import STATE_KEY, ModelHolds


@dataclass(frozen=True)
class Served:
    """A model a request may use now: its engine and what was loaded."""

    engine: Engine
    info: ModelInfo


def pool_of(app: FastAPI) -> ModelPool:
    pool: ModelPool = app.state.pool
    return pool


async def served_model(
    request: Request,
    requested: str | None,
    *,
    param: str = "model",
    n_ctx: int | None = None,
    keep_alive_s: float | None = None,
) -> Served:
    """The model ``requested`` names (none or empty: the one loaded or used last) with the
    engine serving it, held busy until the request's last byte. Every generation, embedding and
    model-detail route of every dialect asks here, so a name means the same thing on all of them.

    A library model that is not loaded is loaded first when load on request is on (the request
    waits for it); ``n_ctx`` larger than the loaded context reloads it at that context when it
    fits; ``keep_alive_s`` is how long the model stays loaded once idle (Ollama's keep_alive).
    Raises ``ModelNotLoaded`` when nothing is loaded and no name is given, a 404
    ``model_not_found`` for a name that means no model, a 400 ``model_ambiguous`` for one that
    means several, and ``InsufficientMemory`` (507) when the model cannot fit.
    """
    holds: ModelHolds = getattr(request.state, STATE_KEY)
    try:
        granted = pool_of(request.app).acquire(requested, n_ctx=n_ctx, keep_alive_s=keep_alive_s)
        granted.add_done_callback(holds.take)
        held = await asyncio.wrap_future(granted)
    except UnknownModel as exc:
        raise ApiError(404, exc.user_message, code="model_not_found", param=param) from exc
    except AmbiguousModel as exc:
        raise ApiError(400, exc.user_message, code="model_ambiguous", param=param) from exc
    except ModelNotLoaded as exc:
        if not requested:
            raise
        raise ApiError(404, exc.user_message, code="model_not_found", param=param) from exc
    return Served(held.engine, held.info)


def served_models(app: FastAPI) -> list[Served]:
    """Every loaded model, most recently used first (for listings and metrics; not held)."""
    return [Served(model.engine, model.info) for model in pool_of(app).models()]


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
