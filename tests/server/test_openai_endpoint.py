"""The OpenAI dialect over real HTTP on 127.0.0.1, with the official openai SDK and httpx."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.server.conftest import ServerFactory, base_url


@pytest.fixture
def url(serve: ServerFactory, tiny_model: Path) -> str:
    return base_url(serve(tiny_model))


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)


def test_models_list_shows_the_loaded_model_with_its_context(client: openai.OpenAI) -> None:
    models = client.models.list().data
    # The loaded model first; with load on request on, the library's other models follow.
    assert models[0].id == "tiny-chatml"
    assert models[0].model_extra is not None
    assert models[0].model_extra["context_length"] == 256
    assert models[0].model_extra["meta"]["loaded"] is True
    assert all(m.model_extra and not m.model_extra["meta"]["loaded"] for m in models[1:])
    assert client.models.retrieve("tiny-chatml").id == "tiny-chatml"


def test_chat_completion_with_usage(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny-chatml",
        messages=[{"role": "user", "content": "Hello"}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].finish_reason in ("length", "stop")
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 8
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streamed_chat_matches_the_unstreamed_reply_and_ends_with_usage(
    client: openai.OpenAI,
) -> None:
    kwargs = {
        "model": "tiny-chatml",
        "messages": [{"role": "user", "content": "Hello world"}],
        "max_tokens": 12,
        "temperature": 0,
        "seed": 5,
    }
    whole = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
    chunks = list(
        client.chat.completions.create(
            stream=True,
            stream_options={"include_usage": True},
            **kwargs,  # type: ignore[call-overload]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("length", "stop")
    assert all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_raw_stream_ends_with_done(url: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)


def test_text_completion_streamed_and_not(client: openai.OpenAI) -> None:
    whole = client.completions.create(
        model="tiny-chatml", prompt="Hello", max_tokens=6, temperature=0
    )
    assert whole.object == "text_completion"
    assert whole.usage is not None
    assert whole.usage.completion_tokens <= 6
    streamed = client.completions.create(
        model="tiny-chatml", prompt="Hello", max_tokens=6, temperature=0, stream=True
    )
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text


def test_completions_default_to_sixteen_tokens_like_openai(client: openai.OpenAI) -> None:
    whole = client.completions.create(model="tiny-chatml", prompt="Hello", temperature=0)
    assert whole.usage is not None
    assert whole.usage.completion_tokens <= 16


def test_a_model_that_is_not_loaded_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"


def test_a_prompt_longer_than_the_context_is_400_with_both_counts(url: str) -> None:
    body = {"messages": [{"role": "user", "content": "Hello world " * 200}], "stream": True}
    response = httpx.post(f"{url}/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert "256" in error["message"]


_BAD_IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,!!not!!"}}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (json.dumps({"messages": []}).encode(), "messages"),
        (
            json.dumps({"messages": [{"role": "wizard", "content": "x"}]}).encode(),
            "messages.0.role",
        ),
        (
            json.dumps({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}).encode(),
            "max_tokens",
        ),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}
            ).encode(),
            "temperature",
        ),
        (json.dumps({"messages": [{"role": "user", "content": "x"}], "n": 3}).encode(), "n"),
        (
            json.dumps(
                {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
            ).encode(),
            "messages",
        ),
        (  # a malformed image: refused before any decoding (no vision projector here)
            json.dumps({"messages": [{"role": "user", "content": [_BAD_IMAGE]}]}).encode(),
            "messages",
        ),
    ],
)
def test_bad_requests_get_openai_shaped_400s(url: str, payload: bytes, param: str | None) -> None:
    response = httpx.post(
        f"{url}/v1/chat/completions", content=payload, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert "Traceback" not in error["message"]


def test_unknown_fields_are_ignored(url: str) -> None:
    body = {
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 2,
        "logit_bias": {},
        "parallel_tool_calls": False,
        "some_future_field": {"x": 1},
    }
    assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 200


def test_double_slash_paths_are_served(url: str) -> None:
    assert httpx.get(f"{url}//v1/models").json()["data"][0]["id"] == "tiny-chatml"


def test_unknown_route_is_an_openai_shaped_404(url: str) -> None:
    response = httpx.get(f"{url}/v1/nothing-here")
    assert response.status_code == 404
    assert "error" in response.json()


def test_health_reports_the_model(url: str) -> None:
    assert httpx.get(f"{url}/health").json()["status"] == "ok"


def test_without_a_model_generation_is_503_with_retry_after(serve: ServerFactory) -> None:
    url = base_url(serve(None))
    response = httpx.post(
        f"{url}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["error"]["code"] == "model_not_loaded"
    listed = httpx.get(f"{url}/v1/models").json()["data"]
    assert not [m["id"] for m in listed if m["meta"]["loaded"]]


def test_with_an_api_key_requests_without_it_are_401(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model, api_key="s3cret"))
    assert httpx.get(f"{url}/v1/models").status_code == 401
    wrong = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/health").status_code == 200
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
    assert client.models.list().data[0].id == "tiny-chatml"


def test_listening_beyond_loopback_needs_an_api_key(serve: ServerFactory) -> None:
    from app.core.errors import ConfigError

    with pytest.raises(ConfigError, match="API key"):
        serve(None, host="0.0.0.0")


def test_a_busy_port_is_a_clear_error(serve: ServerFactory) -> None:
    from app.core.errors import ConfigError

    first = serve(None)
    assert first.server is not None
    with pytest.raises(ConfigError, match="cannot listen"):
        serve(None, port=first.server.port)
