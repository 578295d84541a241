"""``create_app(pool, config)``: the FastAPI application, with no globals (what the routes use
lives on app.state).

The dialects share the port: OpenAI under ``/v1`` (with the Responses API at
``/v1/responses``), Anthropic Messages at ``/v1/messages`` and Ollama under ``/api`` (plus
``/``), with llama.cpp's ``/infill`` for its editor plugins and Prometheus's ``/metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI

from app import __version__
from app.core.errors import ConfigError
from app.core.pool.pool import ModelPool
from app.core.server.anthropic_routes import router as anthropic_router
from app.core.server.dialects import served_models
from app.core.server.errors import install_error_handlers
from app.core.server.guards import (
    ApiKeyGuard,
    BodyGuard,
    HostGuard,
    OriginGuard,
    PathNormaliser,
    RequestLogger,
    check_cors_origins,
)
from app.core.server.host_check import allowed_host_names, is_loopback
from app.core.server.infill_routes import router as infill_router
from app.core.server.metrics import EndpointMetrics, note_route
from app.core.server.metrics import router as metrics_router
from app.core.server.ollama_routes import router as ollama_router
from app.core.server.openai_routes import router as openai_router
from app.core.server.request_log import RequestLog
from app.core.server.responses_routes import router as responses_router
from app.core.storage.settings import ServerLimits

# Ollama caps decompressed bodies at 20 MiB; a whole 128k-token prompt is well under that.
DEFAULT_MAX_BODY_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class ServerConfig:
    """Where and how the endpoint listens. Refuses, as ``ConfigError``, what would be unsafe."""

    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = field(default=None, repr=False)  # never in a log line
    cors_origins: tuple[str, ...] = field(default=())
    # Host names besides localhost/loopback/the bound address that clients may use (a LAN name).
    allowed_hosts: tuple[str, ...] = field(default=())
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    limits: ServerLimits = field(default_factory=ServerLimits)

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.api_key:
            raise ConfigError(
                f"listening on {self.host} exposes the endpoint beyond this machine, so it needs "
                "an API key (generate one on the app's Server page, or give `homefire serve` "
                "HOMEFIRE_API_KEY or --api-key-stdin)"
            )
        check_cors_origins(self.cors_origins)


def create_app(
    pool: ModelPool, config: ServerConfig, request_log: RequestLog | None = None
) -> FastAPI:
    """The endpoint over the models in ``pool``; each request handled lands in ``request_log``."""
    app = FastAPI(
        title="Homefire",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(note_route)],
    )
    app.state.pool = pool
    app.state.limits = config.limits  # the embedding routes' caps
    app.state.metrics = EndpointMetrics(lambda: served_models(app))
    install_error_handlers(app)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        loaded = pool.models()
        models: list[dict[str, Any]] = []
        for model in loaded:
            usage = model.engine.slot_usage
            models.append(
                {
                    "model": model.name,
                    "n_ctx": model.info.n_ctx,
                    "busy": model.busy,
                    "pending": model.engine.pending,
                    "slots": {"active": usage.active, "total": usage.slots, "queued": usage.queued},
                }
            )
        return {
            "status": "ok" if loaded else "no_model",
            # The model a request naming none gets, and every loaded one.
            "model": loaded[0].name if loaded else None,
            "models": models,
            "loading": pool.loading(),
            "pending": sum(m["pending"] for m in models),
            "slots": {
                key: sum(m["slots"][key] for m in models) for key in ("active", "total", "queued")
            },
            "version": __version__,
        }

    app.include_router(openai_router)
    app.include_router(responses_router)
    app.include_router(ollama_router)
    app.include_router(anthropic_router)
    app.include_router(infill_router)
    app.include_router(metrics_router)
    # add_middleware wraps: the last one added runs first.
    app.add_middleware(
        BodyGuard, max_bytes=config.max_body_bytes, timeout_s=config.limits.body_timeout_s
    )
    # The key is checked from the headers alone, before any body is read: a client without it
    # cannot make Homefire receive or buffer anything.
    if config.api_key:
        app.add_middleware(ApiKeyGuard, key=config.api_key)
    app.add_middleware(OriginGuard, origins=tuple(config.cors_origins))
    app.add_middleware(HostGuard, allowed=allowed_host_names(config.host, config.allowed_hosts))
    app.add_middleware(RequestLogger, log=request_log or RequestLog(), metrics=app.state.metrics)
    app.add_middleware(PathNormaliser)
    return app
