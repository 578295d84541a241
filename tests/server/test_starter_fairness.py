"""Fairness on the real starter model: concurrent streams all complete, a departed
autocomplete client frees the engine within two tokens (counted by an engine observer)."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app.core.services import AppServices
from tests.server.conftest import TokenCounter, base_url


def _stream_chat(url: str, i: int) -> tuple[int, str | None, bool]:
    """(content chunks received, finish_reason, saw [DONE]) for one streamed chat."""
    body = {
        "messages": [{"role": "user", "content": f"Write a short list of {i + 3} fruits."}],
        "max_tokens": 32,
        "temperature": 0.7,
        "seed": i,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = 0
    finish: str | None = None
    done = False
    usage: dict[str, Any] = {}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=300) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line == "data: [DONE]":
                done = True
            elif line.startswith("data: "):
                event = json.loads(line.removeprefix("data: "))
                if event["choices"]:
                    choice = event["choices"][0]
                    chunks += bool(choice["delta"].get("content"))
                    finish = choice["finish_reason"] or finish
                else:
                    usage = event["usage"]
    assert usage["completion_tokens"] >= chunks
    return usage["completion_tokens"], finish, done


def test_four_concurrent_streamed_chats_all_complete_in_full(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, counter = starter
    url = base_url(services)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: _stream_chat(url, i), range(4)))
    results = counter.wait_for_results(4)
    assert all(done for _, _, done in answers)
    for tokens, finish, _ in answers:
        # Full means: the reply ran to its limit or to the model's own end, never cut short.
        assert finish in ("length", "stop")
        if finish == "length":
            assert tokens == 32
    assert all(r.finish_reason in ("length", "stop") for r in results)
    assert sorted(r.completion_tokens for r in results) == sorted(t for t, _, _ in answers)


def _autocomplete_and_leave(url: str, counter: TokenCounter, *, stream: bool) -> int:
    """Start a long completion, close the socket once tokens flow; the engine's count then."""
    body = json.dumps({"prompt": "def fibonacci(n):", "max_tokens": 1500, "stream": stream})
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = socket.create_connection((host, int(port)))
    conn.sendall(
        (
            f"POST /v1/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    with counter.changed:
        assert counter.changed.wait_for(lambda: counter.current >= 10, 60)
        conn.close()  # what an editor does on the next keystroke
        return counter.current


@pytest.mark.parametrize("stream", [True, False])
def test_a_departed_autocomplete_client_frees_the_engine_within_two_tokens(
    starter: tuple[AppServices, TokenCounter], stream: bool
) -> None:
    services, counter = starter
    url = base_url(services)
    at_close = _autocomplete_and_leave(url, counter, stream=stream)
    (result,) = counter.wait_for_results(1)
    assert result.finish_reason == "cancelled"
    assert result.completion_tokens - at_close <= 2
    after = httpx.post(
        f"{url}/v1/completions", json={"prompt": "One, two,", "max_tokens": 4}, timeout=60
    ).json()
    assert after["usage"]["completion_tokens"] == 4
