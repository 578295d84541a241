"""Safe by default: Host allow-list, Origin/CORS, body limits, API keys, a hostile template."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import WebSocket  # at module level: FastAPI resolves the handler's annotation here

from app.core.server.port import OLLAMA_PORT, offer_port, port_is_free
from app.core.server.request_log import RequestLog, RequestRecord
from tests.server.conftest import ServerFactory, base_url

CHAT = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}


@pytest.fixture
def url(serve: ServerFactory, tiny_model: Path) -> str:
    return base_url(serve(tiny_model))


def _raw_status(url: str, request: bytes) -> int:
    """Send bytes as they are (httpx refuses to send an empty Host)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        head = conn.recv(4096).decode("latin-1")
    return int(head.split()[1])


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "LOCALHOST.",
        "[::1",
        "localhost:80:80",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("GET", "/api/tags"), ("GET", "/")],
)
def test_rebinding_hosts_are_403_on_every_route(
    url: str, host: str, method: str, path: str
) -> None:
    response = httpx.request(
        method, f"{url}{path}", json=CHAT if method == "POST" else None, headers={"Host": host}
    )
    assert response.status_code == 403


@pytest.mark.parametrize("host_line", [b"Host: \r\n", b"Host: :8080\r\n", b""])
def test_an_empty_or_missing_host_is_403(url: str, host_line: bytes) -> None:
    request = b"GET /v1/models HTTP/1.1\r\n" + host_line + b"Connection: close\r\n\r\n"
    assert _raw_status(url, request) in (400, 403)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost:1234", "LocalHost", "[::1]:80", "127.0.0.2"]
)
def test_loopback_names_are_served(url: str, host: str) -> None:
    assert httpx.get(f"{url}/v1/models", headers={"Host": host}).status_code == 200


def test_configured_names_are_served(serve: ServerFactory, tiny_model: Path) -> None:
    url = base_url(serve(tiny_model, allowed_hosts=("homefire.lan",)))
    assert httpx.get(f"{url}/v1/models", headers={"Host": "homefire.lan:8080"}).status_code == 200
    assert httpx.get(f"{url}/v1/models", headers={"Host": "other.lan"}).status_code == 403


def test_lan_mode_keeps_the_host_check_and_the_key(serve: ServerFactory, tiny_model: Path) -> None:
    services = serve(tiny_model, host="0.0.0.0", api_key="k3y")
    assert services.server is not None
    url = f"http://127.0.0.1:{services.server.port}"
    auth = {"Authorization": "Bearer k3y"}
    assert httpx.get(f"{url}/v1/models", headers=auth).status_code == 200
    assert (
        httpx.get(f"{url}/v1/models", headers={**auth, "Host": "evil.example"}).status_code == 403
    )
    assert httpx.get(f"{url}/v1/models").status_code == 401
    assert httpx.get(f"{url}/api/tags").json() == {
        "error": "a valid API key is required: send 'Authorization: Bearer <key>' or "
        "'x-api-key: <key>'"
    }


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:3000"])
def test_cors_is_off_by_default_and_foreign_origins_are_refused(url: str, origin: str) -> None:
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers={"Origin": origin})
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers
    preflight = httpx.options(
        f"{url}/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-private-network" not in preflight.headers


def test_configured_origins_get_a_proper_preflight_and_cors_headers(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model, cors_origins=("https://app.example", "vscode-webview://*")))
    preflight = httpx.options(
        f"{url}/v1/chat/completions",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
            "Access-Control-Request-Private-Network": "true",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    assert preflight.headers["access-control-allow-private-network"] == "true"
    assert "access-control-allow-credentials" not in preflight.headers
    reply = httpx.post(
        f"{url}/v1/chat/completions", json=CHAT, headers={"Origin": "vscode-webview://abc123"}
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "vscode-webview://abc123"
    assert reply.headers["vary"] == "Origin"
    other = httpx.get(f"{url}/v1/models", headers={"Origin": "https://app.example.evil"})
    assert other.status_code == 403


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("text/plain", 415),
        ("multipart/form-data; boundary=x", 415),
        ("application/json; charset=utf-8", 200),
        ("application/x-www-form-urlencoded", 200),
    ],
)
def test_only_json_bodies_are_accepted(url: str, content_type: str, status: int) -> None:
    import json

    response = httpx.post(
        f"{url}/v1/chat/completions",
        content=json.dumps(CHAT),
        headers={"Content-Type": content_type},
    )
    assert response.status_code == status


def test_oversized_and_compressed_bodies_are_refused_before_parsing(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model, max_body_bytes=4096))
    big = {"messages": [{"role": "user", "content": "x" * 10_000}]}
    response = httpx.post(f"{url}/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"

    def chunks() -> object:
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}]}'

    streamed = httpx.post(
        f"{url}/api/chat", content=chunks(), headers={"Content-Type": "application/json"}
    )  # type: ignore[arg-type]
    assert streamed.status_code == 413
    assert set(streamed.json()) == {"error"}
    gzipped = httpx.post(
        f"{url}/v1/chat/completions",
        content=b"\x1f\x8b" + b"\0" * 20,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert gzipped.status_code == 415
    assert httpx.post(f"{url}/v1/chat/completions", json=CHAT).status_code == 200


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer  s3cret"}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": "Bearer s3cretX"}, 401),
        ({"Authorization": "Basic s3cret"}, 401),
        ({"Authorization": "Bearer s3cret"}, 200),
        ({"Authorization": "bearer s3cret"}, 200),
        ({"X-Api-Key": "s3cret"}, 200),
    ],
)
def test_api_key_variants(
    serve: ServerFactory, tiny_model: Path, headers: dict[str, str], status: int
) -> None:
    url = base_url(serve(tiny_model, api_key="s3cret"))
    assert httpx.get(f"{url}/api/tags", headers=headers).status_code == status
    assert httpx.get(f"{url}/v1/models?api_key=s3cret").status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200


def test_any_bearer_is_accepted_without_a_key(url: str) -> None:
    for value in ("Bearer undefined", "Bearer", "Bearer x"):
        assert httpx.get(f"{url}/v1/models", headers={"Authorization": value}).status_code == 200


def test_a_template_that_tries_to_escape_the_sandbox_renders_nothing_harmful(
    serve: ServerFactory, tmp_path: Path
) -> None:
    from tests.fixtures.tiny_llama import write_tiny_llama

    canary = tmp_path / "pwned"
    payload = (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}"
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(canary) + "').read() }}"
        "{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    model = write_tiny_llama(tmp_path / "hostile.gguf", chat_template=payload)
    url = base_url(serve(model))
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "chat_template_error"
    ollama_side = httpx.post(f"{url}/api/chat", json={"model": "hostile", **CHAT, "stream": False})
    assert ollama_side.status_code == 400
    assert not canary.exists()
    # still serving
    assert (
        httpx.post(f"{url}/v1/completions", json={"prompt": "a", "max_tokens": 1}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "bomb",
    [
        "{{ 'x'.ljust(10**10) }}",
        "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
    ],
    ids=["memory", "time"],
)
def test_a_template_bomb_fails_the_request_while_health_answers(
    serve: ServerFactory, tmp_path: Path, bomb: str
) -> None:
    from tests.fixtures.tiny_llama import write_tiny_llama

    services = serve(write_tiny_llama(tmp_path / "bomb.gguf", chat_template=bomb))
    url = base_url(services)
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(
        target=lambda: result.update(
            chat=httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=60)
        )
    )
    request.start()
    health = [httpx.get(f"{url}/health", timeout=5).status_code for _ in range(5)]
    request.join(60)
    assert health == [200] * 5
    assert result["chat"].status_code == 400
    assert result["chat"].json()["error"]["code"] == "chat_template_error"
    # The engine is free again: the render did not hold it.
    completion = httpx.post(f"{url}/v1/completions", json={"prompt": "a", "max_tokens": 1})
    assert completion.status_code == 200


def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_request_log_records_each_request(serve: ServerFactory, tiny_model: Path) -> None:
    services = serve(tiny_model)
    url = base_url(services)
    seen: list[RequestRecord] = []
    unsubscribe = services.request_log.subscribe(seen.append)
    httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers={"User-Agent": "Continue/1.0"})
    body = {**CHAT, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        response.read()
    httpx.get(f"{url}/v1/models", headers={"Host": "evil.example"})
    # Entries are written once a response has gone out, which can be after the client read it.
    assert wait_for(lambda: len(seen) == 3)
    unsubscribe()
    httpx.get(f"{url}/api/tags")
    assert wait_for(lambda: len(services.request_log.records()) == 4)
    assert [(r.path, r.status) for r in seen] == [
        ("/v1/chat/completions", 200),
        ("/v1/chat/completions", 200),
        ("/v1/models", 403),
    ]
    first, streamed, refused = seen
    assert first.client == "Continue"
    assert first.model == "tiny-chatml"
    assert first.prompt_tokens is not None
    assert first.completion_tokens is not None
    assert first.completion_tokens <= 2
    assert streamed.completion_tokens is not None
    assert refused.model is None
    assert first.duration_s >= 0


def test_the_request_log_is_bounded_and_survives_a_broken_subscriber() -> None:
    log = RequestLog(capacity=3)

    def broken(_record: RequestRecord) -> None:
        raise RuntimeError("view crashed")

    log.subscribe(broken)
    from datetime import UTC, datetime

    for i in range(5):
        log.add(
            RequestRecord(
                datetime.now(UTC), "x", "127.0.0.1", "GET", f"/{i}", None, None, None, 0.0, 200
            )
        )
    assert [r.path for r in log.records()] == ["/2", "/3", "/4"]


def test_the_ollama_port_is_offered_only_when_free() -> None:
    if not port_is_free("127.0.0.1", OLLAMA_PORT):
        assert offer_port(fallback=8765) == 8765
        return
    assert offer_port() == OLLAMA_PORT
    holder = socket.create_server(("127.0.0.1", OLLAMA_PORT))
    try:
        assert not port_is_free("127.0.0.1", OLLAMA_PORT)
        assert offer_port(fallback=8765) == 8765
    finally:
        holder.close()


def test_subscribers_are_called_from_the_server_thread(
    serve: ServerFactory, tiny_model: Path
) -> None:
    services = serve(tiny_model)
    threads: list[str] = []
    logged = threading.Event()

    def on_record(_record: object) -> None:
        threads.append(threading.current_thread().name)
        logged.set()

    services.request_log.subscribe(on_record)
    httpx.get(f"{base_url(services)}/health")
    # The log entry is written once the response has gone out, which can be after the client
    # has read it.
    assert logged.wait(10)
    assert threads == ["http-server"]


def test_the_key_is_never_in_the_request_log_errors_or_config_text(
    serve: ServerFactory, tiny_model: Path
) -> None:
    key = "s3cret-Zq81"
    services = serve(tiny_model, api_key=key)
    url = base_url(services)
    answers = [
        httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key[:-1]}"}),
        httpx.get(f"{url}/v1/models?api_key={key}"),
        httpx.get(f"{url}/api/tags", headers={"X-Api-Key": key + "x"}),
        httpx.post(
            f"{url}/v1/chat/completions", json={"messages": "x"}, headers={"X-Api-Key": key}
        ),
        httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}),
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 400, 200]
    assert wait_for(lambda: len(services.request_log.records()) == len(answers))
    assert all(key[:-1] not in a.text for a in answers)
    assert key[:-1] not in repr(services.request_log.records())
    assert services.server is not None
    assert key not in repr(services.server.config)


WEBSOCKET_HEADER_TIMEOUT_S = 0.5


@pytest.fixture
def websocket_probe(tiny_model: Path) -> Iterator[str]:
    """Homefire's app plus one websocket route, served by uvicorn on 127.0.0.1.

    No Homefire route takes a websocket; this one shows that one added later would still sit
    behind the same Host, Origin and key checks as every HTTP route.
    """
    import uvicorn

    from app.core.server.app import ServerConfig, create_app
    from app.core.server.header_deadline import protocol_with_header_deadline
    from app.core.services import AppServices

    services = AppServices.create()
    app = create_app(
        services.pool,
        ServerConfig(port=0, api_key="k3y", cors_origins=("https://ok.example",)),
    )

    @app.websocket("/probe")
    async def probe(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    sock = socket.create_server(("127.0.0.1", 0))
    # Homefire's own protocol, with a short header deadline that must not cut a websocket.
    protocol = protocol_with_header_deadline(WEBSOCKET_HEADER_TIMEOUT_S)
    config = uvicorn.Config(app, http=protocol, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="ws-probe")
    thread.start()
    assert wait_for(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        services.close()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"Authorization: Bearer k3y\r\n", 101),
        (b"X-Api-Key: k3y\r\nOrigin: https://ok.example\r\n", 101),
        (b"", 403),  # no key
        (b"Authorization: Bearer nope\r\n", 403),
        (b"Authorization: Bearer k3y\r\nOrigin: https://evil.example\r\n", 403),
        (b"Authorization: Bearer k3y\r\nOrigin: null\r\n", 403),
    ],
)
def test_a_websocket_passes_the_same_origin_and_key_checks(
    websocket_probe: str, headers: bytes, status: int
) -> None:
    request = (
        b"GET /probe HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        + headers
        + b"\r\n"
    )
    assert _raw_status(websocket_probe, request) == status


@pytest.mark.parametrize("host", [b"evil.example", b"localhost.evil.example", b":8080"])
def test_a_websocket_passes_the_same_host_check(websocket_probe: str, host: bytes) -> None:
    request = (
        b"GET /probe HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer k3y\r\n\r\n"
    )
    assert _raw_status(websocket_probe, request) == 403


def test_an_open_websocket_outlives_the_header_deadline(websocket_probe: str) -> None:
    from websockets.sync.client import connect

    url = websocket_probe.replace("http://", "ws://") + "/probe"
    with connect(url, additional_headers={"Authorization": "Bearer k3y"}) as websocket:
        time.sleep(WEBSOCKET_HEADER_TIMEOUT_S * 3)
        websocket.send("still here")
        assert websocket.recv(timeout=10) == "still here"
