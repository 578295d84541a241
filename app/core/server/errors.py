"""Errors as JSON chosen by the error's type, never by its message.

OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``) everywhere but the Ollama
dialect's ``/api/*`` routes, which answer ``{"error": "message"}`` as Ollama does, and the
Anthropic dialect's ``/v1/messages*`` routes, which answer
``{"type": "error", "error": {"type", "message"}}`` with the type Anthropic gives each status.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import (
    AmbiguousModel,
    AppError,
    ContextOverflow,
    EngineBusy,
    InsufficientMemory,
    ModelNotLoaded,
    PoolFull,
    TemplateError,
    UnknownModel,
    UnsupportedRequest,
    WorkerError,
    WorkerIncompatible,
    WorkerLost,
    WorkerTooSmall,
    WorkerUnreachable,
)


def is_ollama_path(path: str) -> bool:
    return path.startswith("/api/")


def is_anthropic_path(path: str) -> bool:
    return path == "/v1/messages" or path.startswith("/v1/messages/")


# Anthropic names an error by its status; clients (Claude Code among them) retry on the
# overloaded ones and compact the conversation on "prompt is too long".
ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class ApiError(Exception):
    """An error with its HTTP status and OpenAI error fields, raised by route handlers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.details = details or {}  # extra fields of the OpenAI error object

    def response(self, path: str = "") -> JSONResponse:
        """The answer for a request to ``path`` (its dialect decides the body's shape)."""
        content: dict[str, Any] = {"error": self.message}
        if is_anthropic_path(path):
            content = self.anthropic_body()
        elif not is_ollama_path(path):
            content = error_body(self.message, self.type, self.param, self.code)
            content["error"].update(self.details)
        return JSONResponse(status_code=self.status, content=content, headers=self.headers)

    def anthropic_body(self) -> dict[str, Any]:
        """The error as Anthropic's Messages API shapes it (in a JSON answer or an SSE event)."""
        kind = ANTHROPIC_ERROR_TYPES.get(
            self.status, "api_error" if self.status >= 500 else "invalid_request_error"
        )
        message = self.message
        if "n_prompt_tokens" in self.details:
            # Anthropic's own wording, which Claude Code reads to compact the conversation.
            message = (
                f"prompt is too long: {self.details['n_prompt_tokens']} tokens > "
                f"{self.details['n_ctx']} maximum ({message})"
            )
        return {"type": "error", "error": {"type": kind, "message": message}}


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def api_error_for(exc: AppError) -> ApiError:
    """Map a core error to its HTTP answer."""
    if isinstance(exc, ContextOverflow):
        # The counts as llama.cpp's server reports them, so clients can trim and retry.
        return ApiError(
            400,
            exc.user_message,
            code="context_length_exceeded",
            param="messages",
            details={"n_prompt_tokens": exc.prompt_tokens, "n_ctx": exc.n_ctx},
        )
    if isinstance(exc, EngineBusy):
        return ApiError(
            503,
            exc.user_message,
            type_="server_error",
            code="engine_busy",
            headers={"Retry-After": str(exc.retry_after_s)},
        )
    if isinstance(exc, ModelNotLoaded):
        return ApiError(
            503,
            exc.user_message,
            type_="server_error",
            code="model_not_loaded",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, InsufficientMemory):
        # 507 Insufficient Storage: the server cannot hold what the request needs (Ollama
        # answers a model that does not fit with a 500; a distinct status lets clients tell).
        return ApiError(
            507,
            exc.user_message,
            type_="server_error",
            code="insufficient_memory",
            param="model",
            details={"needed_bytes": exc.needed_bytes, "available_bytes": exc.available_bytes},
        )
    if isinstance(exc, PoolFull):
        return ApiError(
            503,
            exc.user_message,
            type_="server_error",
            code="too_many_models",
            headers={"Retry-After": str(exc.retry_after_s)},
        )
    if isinstance(exc, UnknownModel):
        return ApiError(404, exc.user_message, code="model_not_found", param="model")
    if isinstance(exc, AmbiguousModel):
        return ApiError(400, exc.user_message, code="model_ambiguous", param="model")
    if isinstance(exc, TemplateError):
        return ApiError(400, exc.user_message, code="chat_template_error", param="messages")
    if isinstance(exc, WorkerError):
        # A machine this one depends on failed: a bad gateway, not a fault of the request.
        code = {
            WorkerLost: "worker_lost",
            WorkerUnreachable: "worker_unreachable",
            WorkerIncompatible: "worker_incompatible",
            WorkerTooSmall: "worker_too_small",
        }.get(type(exc), "worker_error")
        return ApiError(502, exc.user_message, type_="server_error", code=code)
    if isinstance(exc, UnsupportedRequest):
        return ApiError(400, exc.user_message, code="unsupported_request")
    return ApiError(500, exc.user_message, type_="server_error", code="internal_error")


def _describe_validation(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "the request is invalid", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(loc) or None
    if param is None:
        return "the request body must be a JSON object", None
    message = first.get("msg", "invalid value")
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> JSONResponse:
        return api_error_for(exc).response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _describe_validation(exc)
        return ApiError(400, message, param=param).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else None
        return ApiError(
            exc.status_code, str(exc.detail), code=code, headers=dict(exc.headers or {})
        ).response(request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return ApiError(
            500, f"internal error: {type(exc).__name__}", type_="server_error"
        ).response(request.url.path)
