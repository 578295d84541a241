"""``create_app(services)``: the FastAPI application, with no globals (services live on app.state)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response

from app import __version__
from app.core.server.errors import ApiError, install_error_handlers
from app.core.server.openai_routes import router as openai_router

if TYPE_CHECKING:
    from app.core.services import AppServices

# The health check stays open so launchers and load balancers can probe without the key.
OPEN_PATHS = frozenset({"/health"})


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    cors_origins: tuple[str, ...] = field(default=())


def create_app(services: AppServices, config: ServerConfig) -> FastAPI:
    app = FastAPI(title="Homefire", version=__version__, docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.config = config
    install_error_handlers(app)

    @app.middleware("http")
    async def normalise_path(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Some clients join a base URL ending in "/" with "/v1/...": serve "//v1/models" too.
        path = request.scope["path"]
        if path.startswith("//"):
            request.scope["path"] = "/" + path.lstrip("/")
        return await call_next(request)

    if config.api_key:
        expected = f"Bearer {config.api_key}".encode()

        @app.middleware("http")
        async def require_key(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            if request.scope["path"] in OPEN_PATHS:
                return await call_next(request)
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return ApiError(
                    401,
                    "a valid API key is required: send 'Authorization: Bearer <key>'",
                    code="invalid_api_key",
                ).response()
            return await call_next(request)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        info = services.engine.model
        return {
            "status": "ok" if info else "no_model",
            "model": info.model_id if info else None,
            "pending": services.engine.pending,
            "version": __version__,
        }

    app.include_router(openai_router)
    return app
