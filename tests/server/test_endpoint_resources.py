"""What one client can hold: the key before the body, deadlines, connections, embedding work.

Raw sockets send exactly the bytes a hostile client would (httpx always completes a request).
Each wait has a generous bound that only guards against a hang; none measures speed.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.storage.settings import ServerLimits
from tests.server.conftest import ServerFactory, base_url

HANG_GUARD_S = 20.0


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=HANG_GUARD_S)


def head_of(conn: socket.socket) -> bytes:
    """The response's status line and headers (raises on the hang guard's timeout)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def closed_by_server(conn: socket.socket) -> bool:
    """True once the server closes the connection (anything it still sends is read past)."""
    try:
        while chunk := conn.recv(4096):
            del chunk
    except (ConnectionResetError, TimeoutError):
        return False
    return True


def eventually(condition: Callable[[], bool], timeout_s: float = HANG_GUARD_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def post_head(path: str, length: int, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    ).encode()


def test_a_client_without_the_key_gets_401_before_it_sends_its_body(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model, api_key="k3y"))
    with connect(url) as conn:
        # Ten megabytes announced, none sent: the answer must not wait for them.
        conn.sendall(post_head("/v1/chat/completions", 10_000_000))
        head = head_of(conn)
        assert head.startswith(b"HTTP/1.1 401 ")
        assert b"connection: close" in head.lower()
        assert closed_by_server(conn)
    with connect(url) as conn:
        conn.sendall(post_head("/api/chat", 10_000_000, "Authorization: Bearer wrong\r\n"))
        assert head_of(conn).startswith(b"HTTP/1.1 401 ")


def test_a_body_that_does_not_arrive_in_time_is_408(serve: ServerFactory, tiny_model: Path) -> None:
    url = base_url(serve(tiny_model, limits=ServerLimits(body_timeout_s=1)))
    with connect(url) as conn:
        conn.sendall(post_head("/v1/chat/completions", 1000) + b'{"messages": ')
        head = head_of(conn)
        assert head.startswith(b"HTTP/1.1 408 ")
        assert closed_by_server(conn)
    assert httpx.get(f"{url}/health").status_code == 200


def test_slowloris_headers_are_cut_off_at_the_header_deadline(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model, limits=ServerLimits(header_timeout_s=1)))
    trickle = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 400
    with connect(url) as conn:
        closed = False
        for byte in trickle:  # one byte every 50 ms: 20 s in all, far past the deadline
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable and closed_by_server(conn):
                closed = True
                break
        assert closed
        # The other clients were served meanwhile.
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_complete_request_is_not_cut_by_the_header_deadline(
    serve: ServerFactory, tiny_model: Path
) -> None:
    """The deadline covers waiting for headers only: a reply may take as long as it needs."""
    url = base_url(serve(tiny_model, limits=ServerLimits(header_timeout_s=0.2)))
    with httpx.Client() as client:
        for _ in range(3):
            reply = client.post(
                f"{url}/v1/completions", json={"prompt": "a b c", "max_tokens": 40}, timeout=60
            )
            assert reply.status_code == 200
            time.sleep(0.05)  # idle on the kept-alive connection, under its deadline


def test_headers_larger_than_the_limit_are_400(serve: ServerFactory, tiny_model: Path) -> None:
    """Headers still arriving are buffered up to the limit, never further."""
    url = base_url(serve(tiny_model, limits=ServerLimits(max_header_bytes=4096)))
    with connect(url) as conn:
        conn.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 8000)
        assert head_of(conn).startswith(b"HTTP/1.1 400 ")
    assert httpx.get(f"{url}/v1/models").status_code == 200


def test_connections_beyond_the_limit_get_503_until_others_close(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model, limits=ServerLimits(max_connections=4)))
    idle = [connect(url) for _ in range(4)]
    try:
        assert eventually(lambda: httpx.get(f"{url}/health").status_code == 503)
    finally:
        for conn in idle:
            conn.close()
    assert eventually(lambda: httpx.get(f"{url}/health").status_code == 200)


def test_an_idle_kept_alive_connection_is_closed(serve: ServerFactory, tiny_model: Path) -> None:
    url = base_url(serve(tiny_model, limits=ServerLimits(keep_alive_s=1)))
    with connect(url) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert head_of(conn).startswith(b"HTTP/1.1 200 ")
        assert closed_by_server(conn)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"input": ["a"] * 2049}),
        ("/api/embed", {"model": "tiny-chatml", "input": ["a"] * 2049}),
    ],
)
def test_embeddings_cap_the_number_of_inputs(
    serve: ServerFactory, tiny_model: Path, path: str, body: dict[str, Any]
) -> None:
    services = serve(tiny_model)
    reply = httpx.post(f"{base_url(services)}{path}", json=body, timeout=60)
    assert reply.status_code == 400
    assert "2048" in reply.text
    assert services.pool.default().engine.pending == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"input": ["one two three four five six"] * 8}),
        ("/api/embed", {"model": "tiny-chatml", "input": ["one two three four five six"] * 8}),
    ],
)
def test_embeddings_cap_the_tokens_of_all_inputs(
    serve: ServerFactory, tiny_model: Path, path: str, body: dict[str, Any]
) -> None:
    url = base_url(serve(tiny_model, limits=ServerLimits(max_embedding_tokens=20)))
    reply = httpx.post(f"{url}{path}", json=body, timeout=60)
    assert reply.status_code == 400
    assert "20 tokens" in reply.text
    small = {**body, "input": ["one two"]}
    assert httpx.post(f"{url}{path}", json=small, timeout=60).status_code == 200


def test_an_embedding_client_that_leaves_stops_the_work_between_texts(
    serve: ServerFactory, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    services = serve(tiny_model)
    engine = services.pool.default().engine
    texts_embedded: list[int] = []
    real_embed = engine.embed

    def counted(texts: Any, cancel: Any = None) -> Any:
        texts_embedded.append(len(texts))
        return real_embed(texts, cancel=cancel)

    monkeypatch.setattr(engine, "embed", counted)  # a spy: the real engine does the work
    many = 500  # about 120 tokens each: within the tiny model's context
    body = json.dumps({"input": [" ".join(["word"] * 60)] * many}).encode()
    with connect(base_url(services)) as conn:
        conn.sendall(post_head("/v1/embeddings", len(body)) + body)
        assert eventually(lambda: len(texts_embedded) >= 3)
    # The text handed over as the client left may still be submitted (then cancelled), so wait
    # until the count holds still for half a second with nothing pending.
    stopped_at = -1
    for _ in range(40):
        assert eventually(lambda: engine.pending == 0)
        if len(texts_embedded) == stopped_at:
            break
        stopped_at = len(texts_embedded)
        time.sleep(0.5)
    assert len(texts_embedded) == stopped_at  # nothing more is queued after the client left
    assert stopped_at < many
