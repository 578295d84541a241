"""Serve the app with uvicorn on its own named thread, on a socket bound here.

Binding the socket ourselves makes a busy port an ``OSError`` the caller sees (uvicorn would
``sys.exit``), and tells the real port at once when 0 was asked for (tests).
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn

from app.core.errors import ConfigError
from app.core.pool.pool import ModelPool
from app.core.server.app import ServerConfig, create_app
from app.core.server.header_deadline import protocol_with_header_deadline
from app.core.server.request_log import RequestLog

log = logging.getLogger(__name__)


class ServerRunner:
    def __init__(self, pool: ModelPool, config: ServerConfig, request_log: RequestLog) -> None:
        self.config = config
        self._app = create_app(pool, config, request_log)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.config.host
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        try:
            sock = socket.create_server((self.config.host, self.config.port), family=family)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
            ) from exc
        self._socket = sock
        self.port = sock.getsockname()[1]
        limits = self.config.limits
        uv_config = uvicorn.Config(
            self._app,
            http=protocol_with_header_deadline(limits.header_timeout_s),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
            lifespan="off",
            limit_concurrency=limits.max_connections,
            timeout_keep_alive=limits.keep_alive_s,
            h11_max_incomplete_event_size=limits.max_header_bytes,
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="http-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise ConfigError("the HTTP server did not start")
        log.info("serving on %s", self.url)

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None
