"""Carry one engine generation into the HTTP server's asyncio loop, and cancel it when the client leaves.

The engine thread hands chunks over with ``loop.call_soon_threadsafe``; the handler reads them
from an ``asyncio.Queue``. Whatever ends the handler (completion, error, a disconnect that
cancels its task) cancels the engine job, so a departed client frees the engine within a token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from app.core.engine.cancel import CancelToken
from app.core.engine.engine import Engine
from app.core.engine.request import GenerationRequest
from app.core.engine.result import GenerationResult
from app.core.errors import Cancelled

T = TypeVar("T")

# Every dialect's event streams: never cached, never buffered by a proxy in between.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Errors known before the first token (context overflow, template, grammar) get a JSON answer
# with their status if they come within this long; after it a stream starts anyway and a
# keep-alive goes out this often while a long prompt is read (coding agents send prompts of
# 10k-20k tokens, which a CPU reads for minutes), so neither the client nor a proxy gives up.
FIRST_EVENT_WAIT_S = 20.0
KEEPALIVE_EVERY_S = 10.0


@dataclass(frozen=True)
class Chunk:
    text: str


@dataclass(frozen=True)
class Finished:
    result: GenerationResult


Event = Chunk | Finished


class GenerationStream:
    """Events of one generation: ``Chunk``s then one ``Finished`` (or the job's exception)."""

    def __init__(self, engine: Engine, request: GenerationRequest) -> None:
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        self.cancel = CancelToken()
        # EngineBusy is raised here, before anything is sent to the client.
        self._future = engine.generate(request, on_chunk=self._on_chunk, cancel=self.cancel)
        self._future.add_done_callback(self._on_done)

    def _on_chunk(self, text: str) -> None:  # engine thread
        self._loop.call_soon_threadsafe(self._events.put_nowait, Chunk(text))

    def _on_done(
        self, future: object
    ) -> None:  # engine thread (or here, if cancelled while queued)
        try:
            item: Event | BaseException = Finished(self._future.result())
        except BaseException as exc:  # noqa: BLE001 - the handler re-raises it in the loop
            item = exc
        # A closed loop means nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)

    async def next_event(self) -> Event:
        item = await self._events.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def events(self) -> AsyncIterator[Event]:
        try:
            while True:
                event = await self.next_event()
                yield event
                if isinstance(event, Finished):
                    return
        finally:
            self.close()

    def close(self) -> None:
        self.cancel.cancel()
        self._future.cancel()  # a job still in the queue never starts


async def first_event_or_disconnect(stream: GenerationStream, request: Request) -> Event:
    """Wait for the first event, cancelling the generation if the client leaves meanwhile."""
    event = await _until_event(stream, request, want_finished=False)
    assert event is not None  # no deadline
    return event


async def result_or_disconnect(stream: GenerationStream, request: Request) -> GenerationResult:
    """Drain a non-streamed generation; a client that leaves cancels it at once."""
    event = await _until_event(stream, request, want_finished=True)
    assert isinstance(event, Finished)
    return event.result


async def first_event_within(
    stream: GenerationStream, request: Request, seconds: float
) -> Event | None:
    """The first event if it comes within ``seconds``, else None (the generation goes on);
    a client that leaves meanwhile cancels it. ``seconds`` <= 0: None at once, so the stream
    starts whatever the engine has done already."""
    if seconds <= 0:
        return None
    return await _until_event(stream, request, want_finished=False, within_s=seconds)


async def _until_event(
    stream: GenerationStream,
    request: Request,
    *,
    want_finished: bool,
    within_s: float | None = None,
) -> Event | None:
    loop = asyncio.get_running_loop()
    deadline = None if within_s is None else loop.time() + within_s
    disconnect = asyncio.ensure_future(_disconnected(request))
    try:
        while True:
            next_event = asyncio.ensure_future(stream.next_event())
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(
                {next_event, disconnect}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                # Cancelled before it took an event from the queue, so none is lost.
                next_event.cancel()
                return None
            if next_event not in done:
                next_event.cancel()
                stream.close()
                raise Cancelled("the client disconnected")
            event = next_event.result()
            if not want_finished or isinstance(event, Finished):
                return event
    finally:
        disconnect.cancel()


async def _disconnected(request: Request) -> None:
    # The body was read already, so the next message the server delivers is the disconnect.
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def chain_events(first: list[Event], stream: GenerationStream) -> AsyncIterator[Event]:
    """The events already received, then the rest; the generation is cancelled on exit."""
    try:
        for event in first:
            yield event
            if isinstance(event, Finished):
                return
        async for event in stream.events():
            yield event
    finally:
        stream.close()


async def events_with_keepalive(
    first: list[Event], stream: GenerationStream, every_s: float
) -> AsyncIterator[Event | None]:
    """As ``chain_events``, with None each time ``every_s`` passes without an event (a
    keep-alive is due: a long prompt read or a wait in the queue must not look like a dead
    connection to the client or a proxy)."""
    pending: asyncio.Future[Event] | None = None
    try:
        for event in first:
            yield event
            if isinstance(event, Finished):
                return
        while True:
            pending = asyncio.ensure_future(stream.next_event())
            while not pending.done():
                done, _ = await asyncio.wait({pending}, timeout=every_s)
                if not done:
                    yield None
            event = pending.result()
            yield event
            if isinstance(event, Finished):
                return
    finally:
        if pending is not None:
            pending.cancel()
        stream.close()


async def engine_job_or_disconnect(
    submit: Callable[[CancelToken], Future[T]], request: Request
) -> T:
    """Run one non-streamed engine job (embeddings); a client that leaves cancels it."""
    cancel = CancelToken()
    future = submit(cancel)
    disconnect: asyncio.Future[None] = asyncio.ensure_future(_disconnected(request))
    waiting: asyncio.Future[T] = asyncio.wrap_future(future)
    try:
        pending: set[asyncio.Future[Any]] = {waiting, disconnect}
        done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:
            cancel.cancel()
            future.cancel()
            raise Cancelled("the client disconnected")
        return waiting.result()
    finally:
        disconnect.cancel()
