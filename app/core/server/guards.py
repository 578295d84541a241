"""The endpoint's pure-ASGI gatekeepers, each one small and in the order they run.

``PathNormaliser`` → ``RequestLogger`` → ``HostGuard`` → ``OriginGuard`` (CORS) →
``ApiKeyGuard`` → ``BodyGuard`` → the routes. Pure ASGI (not ``BaseHTTPMiddleware``) so
streamed responses and disconnect notices pass through untouched. The key is checked before the
body is read, so a client without it costs one header parse. Every scope but the server's own
``lifespan`` (a websocket too, though no route accepts one) passes the Host, Origin and key
checks: a guard that looked only at ``http`` would wave any other kind through.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.websockets import WebSocketClose

from app.core.errors import ConfigError
from app.core.server.client_names import client_for
from app.core.server.errors import ApiError
from app.core.server.host_check import host_allowed
from app.core.server.metrics import EndpointMetrics
from app.core.server.model_holds import STATE_KEY as HOLDS_KEY
from app.core.server.model_holds import ModelHolds
from app.core.server.request_log import RequestLog, RequestRecord

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The health check stays open so launchers can probe without the key.
OPEN_PATHS = frozenset({"/health"})
ALLOWED_METHODS = "GET, HEAD, POST, OPTIONS"


# RFC 6455's "policy violation": uvicorn turns a close before the handshake into a 403.
WEBSOCKET_POLICY_VIOLATION = 1008


def _guarded(scope: Scope) -> bool:
    """Every scope a client can open; only ``lifespan`` (the server itself) is not checked."""
    return scope["type"] != "lifespan"


async def _refuse(error: ApiError, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        response = error.response(scope["path"])
        # Closing stops a refused client from going on sending a body nobody will read.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)
    else:
        close = WebSocketClose(WEBSOCKET_POLICY_VIOLATION, error.message[:120])
        await close(scope, receive, send)


class PathNormaliser:
    """Serve ``//v1/models`` as ``/v1/models``: clients join a base URL ending in ``/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("//"):
            scope = {**scope, "path": "/" + scope["path"].lstrip("/")}
        await self.app(scope, receive, send)


class RequestLogger:
    """One ``RequestRecord`` per request, after its last byte (or its failure), into the request
    log and the endpoint's metrics.

    Routes put their template (``route``), ``model``, ``prompt_tokens`` and
    ``completion_tokens`` (and a generation's timings) into ``request.state``; a streamed
    response fills them in when the generation ends, before its last chunk. Being the one place
    that sees every request end, it also releases the models the request held busy in the pool.
    """

    def __init__(self, app: ASGIApp, log: RequestLog, metrics: EndpointMetrics) -> None:
        self.app = app
        self.log = log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        arrived = datetime.now(UTC)
        status = 500
        state: dict[str, Any] = scope.setdefault("state", {})
        holds = state.setdefault(HOLDS_KEY, ModelHolds())

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            holds.close()
            headers = Headers(scope=scope)
            client = scope.get("client")
            record = RequestRecord(
                at=arrived,
                client=client_for(headers.get("user-agent", ""), scope["path"]),
                remote=client[0] if client else "",
                method=scope["method"],
                path=scope["path"],
                model=state.get("model"),
                prompt_tokens=state.get("prompt_tokens"),
                completion_tokens=state.get("completion_tokens"),
                duration_s=time.monotonic() - started,
                status=status,
                route=state.get("route", ""),
                time_to_first_token_s=state.get("time_to_first_token_s"),
                decode_tokens_per_s=state.get("decode_tokens_per_s"),
            )
            self.log.add(record)
            self.metrics.record(record)


class HostGuard:
    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _guarded(scope) and not host_allowed(Headers(scope=scope).get("host", ""), self.allowed):
            error = ApiError(
                403,
                "this Host name is not allowed (DNS-rebinding protection); use localhost or "
                "127.0.0.1, or add the name to the server's allowed hosts",
                type_="permission_error",
                code="host_not_allowed",
            )
            await _refuse(error, scope, receive, send)
            return
        await self.app(scope, receive, send)


# The web's own schemes: a pattern over them would admit every site on the internet.
WEB_SCHEMES = ("http", "https")


def check_cors_origins(origins: tuple[str, ...]) -> None:
    """Exact origins, or ``scheme://*`` for an app's own scheme (``vscode-webview://*``).

    ``*``, ``null`` and any other pattern would let web pages the user merely visits use the
    model: refused with a ``ConfigError`` naming the entry.
    """
    for origin in origins:
        scheme, sep, rest = origin.partition("://")
        app_scheme = rest == "*" and scheme.lower() not in WEB_SCHEMES and scheme.isascii()
        if origin == "null" or not sep or not scheme or ("*" in origin and not app_scheme):
            raise ConfigError(
                f"the CORS origin {origin!r} is not allowed: list each web origin exactly "
                "(such as http://localhost:3000); wildcards would let any page use the model"
            )


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Exact origins, or a scheme pattern such as ``vscode-webview://*``; never ``null``."""
    if not origin or origin == "null":
        return False
    for entry in allowed:
        if entry == origin or (entry.endswith("://*") and origin.startswith(entry[:-1])):
            return True
    return False


class OriginGuard:
    """CORS, off unless origins are configured; requests from any other Origin are refused.

    Browsers add ``Origin`` to cross-site requests, including "simple" POSTs that skip the
    preflight, so refusing unknown origins stops a web page from using the model blind. Tools
    outside a browser send no Origin. No wildcard, no reflection, no credentials.
    """

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _guarded(scope):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if not origin_allowed(origin, self.origins):
            error = ApiError(
                403,
                f"requests from the origin {origin!r} are not allowed; add it to the server's "
                "CORS origins to use Homefire from that page",
                type_="permission_error",
                code="origin_not_allowed",
            )
            await _refuse(error, scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            preflight = {
                **cors,
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": headers.get(
                    "access-control-request-headers", "authorization, content-type"
                ),
                "Access-Control-Max-Age": "600",
            }
            if headers.get("access-control-request-private-network") == "true":
                preflight["Access-Control-Allow-Private-Network"] = "true"
            await Response(status_code=204, headers=preflight)(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in cors.items()),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)


class BodyGuard:
    """Bodies are JSON, uncompressed, at most ``max_bytes`` and whole within ``timeout_s``.

    The body is read here, before the routes, so a slow sender (one byte a second) gets 408
    after the deadline instead of holding a connection and a buffer for as long as it likes.

    ``text/plain`` and ``multipart/form-data`` are what a web page can POST without a
    preflight, so they are refused (415). ``application/x-www-form-urlencoded`` is accepted
    because ``curl -d '{...}'`` (Ollama's documented examples) sends it; a browser sending it
    carries an Origin and was refused already.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        error = self._header_error(headers)
        if error is None:
            try:
                async with asyncio.timeout(self.timeout_s):
                    body, error = await self._read(receive)
            except TimeoutError:
                error = ApiError(
                    408,
                    f"the request body did not arrive within {self.timeout_s:g} seconds",
                    code="body_timeout",
                )
        if error is not None:
            await _refuse(error, scope, receive, send)
            return
        scope = self._as_json(scope)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect notice

        await self.app(scope, replay, send)

    @staticmethod
    def _as_json(scope: Scope) -> Scope:
        """Label a ``curl -d`` body as the JSON it is, so the routes parse it."""
        headers = [
            (name, b"application/json")
            if name == b"content-type" and value.startswith(b"application/x-www-form-urlencoded")
            else (name, value)
            for name, value in scope["headers"]
        ]
        return {**scope, "headers": headers}

    def _header_error(self, headers: Headers) -> ApiError | None:
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return ApiError(415, "compressed request bodies are not accepted")
        media = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        json_like = media in ("", "application/json", "application/x-www-form-urlencoded")
        if not (json_like or media.endswith("+json")):
            return ApiError(415, f"request bodies must be JSON, not {media!r}")
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return self._too_large()
        return None

    async def _read(self, receive: Receive) -> tuple[bytes, ApiError | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", ApiError(400, "the client went away before sending its body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return b"", self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None

    def _too_large(self) -> ApiError:
        return ApiError(
            413, f"the request body is larger than {self.max_bytes} bytes", code="body_too_large"
        )


class ApiKeyGuard:
    """With a key set, every route but the health check needs it (``Bearer`` or ``X-Api-Key``)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _guarded(scope) or (scope["type"] == "http" and scope["path"] in OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        if not self._authorised(Headers(scope=scope)):
            error = ApiError(
                401,
                "a valid API key is required: send 'Authorization: Bearer <key>' or "
                "'x-api-key: <key>'",
                type_="authentication_error",
                code="invalid_api_key",
            )
            await _refuse(error, scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorised(self, headers: Headers) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            given = headers.get("x-api-key", "")
        # compare_digest keeps the comparison's time independent of where the key differs.
        return hmac.compare_digest(given.encode(), self.key)
