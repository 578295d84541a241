"""uvicorn's h11 protocol with a deadline for the request line and headers (slowloris).

uvicorn times out only idle keep-alive connections, and any byte that arrives resets that
timer, so a client sending one header byte a second holds a connection for ever; an ASGI
middleware cannot help, because the app is called only once the headers are complete. This
subclass closes a connection whose next request's headers have not all arrived within the
deadline. It is armed when the connection opens and after each response, and disarmed as soon
as a request starts, so long generations and streamed replies are never cut. The body has its
own deadline in ``BodyGuard``.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderDeadlineProtocol(H11Protocol):
    def __init__(self, *args: Any, header_timeout_s: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout_s = header_timeout_s
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_after: object = None  # the request before the one awaited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_after:
            self._disarm()  # a new request's headers are complete

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()
        # A pipelined request may have started inside the call above: it is not waited for.
        if self.cycle is before and not self.transport.is_closing():
            self._arm()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._disarm()  # the connection now belongs to the websocket protocol
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after = self.cycle
        self._deadline = self.loop.call_later(self._header_timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        self.transport.close()


def protocol_with_header_deadline(header_timeout_s: float) -> type[asyncio.Protocol]:
    """The protocol class to hand to ``uvicorn.Config(http=...)``."""
    # uvicorn builds the protocol by calling what it is given with its own keyword arguments.
    made = functools.partial(HeaderDeadlineProtocol, header_timeout_s=header_timeout_s)
    return cast(type[asyncio.Protocol], made)
