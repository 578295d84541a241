"""The Anthropic Messages dialect over real HTTP, through the real ``anthropic`` SDK.

The tiny coder model has random weights, so its free text is noise: every assertion is about
what the server or a grammar guarantees (shapes, counts, stop reasons, equal text two ways),
never about what the model chose to say. The SDK validates every streamed event's type.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from app.core.server import anthropic_routes
from app.core.services import AppServices
from tests.server.conftest import ServerFactory, TokenCounter, base_url
from tests.server.tiny_coder import HERMES_TOOLS_TEMPLATE, write_tiny_coder

MODEL = "tiny-coder"
ASK: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER_TOOL: dict[str, Any] = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}},
        "required": ["city"],
    },
}
TIME_TOOL: dict[str, Any] = {"name": "get_time", "input_schema": {"type": "object"}}
GREEDY = {"temperature": 0.0}
SAMPLED = {"temperature": 0.5, "top_p": 0.9, "top_k": 20}
STREAM_EVENTS = {
    "message_start",
    "ping",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
}


@pytest.fixture
def served(serve: ServerFactory, tiny_coder_model: Path) -> tuple[AppServices, TokenCounter]:
    services = serve(tiny_coder_model, n_ctx=2048)
    counter = TokenCounter()
    services.pool.add_observer(counter)
    return services, counter


@pytest.fixture
def url(served: tuple[AppServices, TokenCounter]) -> str:
    return base_url(served[0])


def _client(url: str, **options: Any) -> anthropic.Anthropic:
    options.setdefault("api_key", "any")
    return anthropic.Anthropic(
        base_url=url, max_retries=0, _strict_response_validation=True, **options
    )


@pytest.fixture
def client(url: str) -> anthropic.Anthropic:
    return _client(url)


def _raw_events(url: str, body: dict[str, Any], **headers: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every frame, checking Anthropic's byte-exact framing."""
    with httpx.stream(
        "POST", f"{url}/v1/messages", json=body, headers=headers, timeout=60
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    frames = raw.split("\n\n")
    assert frames[-1] == ""
    events = []
    for frame in frames[:-1]:
        name_line, data_line = frame.split("\n")
        name = name_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        events.append((name, data))
    return events


def test_create_answers_a_message_with_usage(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=8,
        system=[{"type": "text", "text": "Be brief."}],
        messages=ASK,
        metadata={"user_id": "ignored"},
        # Sampling fields Anthropic's API takes (this SDK version no longer lists them).
        extra_body=SAMPLED,
    )
    assert reply.type == "message"
    assert reply.role == "assistant"
    assert reply.model == MODEL
    assert reply.id.startswith("msg_")
    assert reply.stop_reason in ("end_turn", "max_tokens")
    assert [block.type for block in reply.content] == ["text"]
    assert 0 < reply.usage.output_tokens <= 8
    if reply.stop_reason == "max_tokens":
        assert reply.usage.output_tokens == 8
    assert reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0) > 0


def test_streamed_and_whole_replies_agree(client: anthropic.Anthropic) -> None:
    ask: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 12,
        "messages": ASK,
        "extra_body": GREEDY,
    }
    whole = client.messages.create(**ask)
    with client.messages.stream(**ask) as stream:
        kinds = {event.type for event in stream}
        streamed = stream.get_final_message()
    assert "text" in kinds  # the SDK's own event for a text_delta it validated
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert streamed.stop_reason == whole.stop_reason
    assert streamed.usage.output_tokens == whole.usage.output_tokens
    total = streamed.usage.input_tokens + (streamed.usage.cache_read_input_tokens or 0)
    assert total == whole.usage.input_tokens + (whole.usage.cache_read_input_tokens or 0)


def test_the_raw_stream_is_anthropics_exact_event_sequence(url: str) -> None:
    events = _raw_events(url, {"model": MODEL, "max_tokens": 6, "messages": ASK, "stream": True})
    names = [name for name, _ in events]
    assert set(names) <= STREAM_EVENTS
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == []
    assert start["stop_reason"] is None
    # Blocks open, grow and close in order, one at a time, indexed from 0.
    index = -1
    open_block = False
    for name, data in events[2:-2]:
        if name == "content_block_start":
            assert not open_block
            index += 1
            assert data["index"] == index
            open_block = True
        elif name == "content_block_delta":
            assert open_block
            assert data["index"] == index
            assert data["delta"]["type"] == "text_delta"
        else:
            assert name == "content_block_stop"
            assert data["index"] == index
            open_block = False
    assert index >= 0
    assert not open_block
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert 0 < delta["usage"]["output_tokens"] <= 6


def test_a_forced_tool_call_is_a_tool_use_block(client: anthropic.Anthropic) -> None:
    reply = client.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=ASK,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert reply.stop_reason == "tool_use"
    (call,) = [block for block in reply.content if block.type == "tool_use"]
    assert call.name == "get_weather"
    assert isinstance(call.input, dict)
    assert call.input["city"] in ("Paris", "Oslo")


def test_a_streamed_tool_call_arrives_as_input_json_deltas(
    client: anthropic.Anthropic, url: str
) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": ASK,
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "any"},
        "stream": True,
    }
    events = _raw_events(url, body)
    starts = [d for n, d in events if n == "content_block_start"]
    tool_start = next(d for d in starts if d["content_block"]["type"] == "tool_use")
    assert tool_start["content_block"]["input"] == {}
    assert tool_start["content_block"]["name"] == "get_weather"
    fragments = [
        d["delta"]["partial_json"]
        for n, d in events
        if n == "content_block_delta" and d["index"] == tool_start["index"]
    ]
    assert json.loads("".join(fragments))["city"] in ("Paris", "Oslo")
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"

    with client.messages.stream(
        model=MODEL,
        max_tokens=200,
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    ) as stream:
        final = stream.get_final_message()
    (call,) = [block for block in final.content if block.type == "tool_use"]
    assert call.input["city"] in ("Paris", "Oslo")  # type: ignore[index]
    assert final.stop_reason == "tool_use"


def test_a_tool_use_round_trip_renders_through_the_template(client: anthropic.Anthropic) -> None:
    first = client.messages.create(
        model=MODEL,
        max_tokens=200,
        messages=ASK,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},
    )
    (call,) = [block for block in first.content if block.type == "tool_use"]
    conversation: list[Any] = [
        *ASK,
        {"role": "assistant", "content": [block.model_dump() for block in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": [{"type": "text", "text": "18 C, sunny"}],
                }
            ],
        },
    ]
    answer = client.messages.create(
        model=MODEL, max_tokens=4, messages=conversation, tools=[WEATHER_TOOL]
    )
    assert answer.type == "message"
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    asked = client.messages.count_tokens(model=MODEL, messages=ASK, tools=[WEATHER_TOOL])
    answered = client.messages.count_tokens(
        model=MODEL, messages=conversation, tools=[WEATHER_TOOL]
    )
    # The call and its result were rendered into the prompt, not dropped.
    assert answered.input_tokens > asked.input_tokens + len("18 C, sunny") // 2


def test_count_tokens_matches_the_prompt_a_request_uses(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=ASK, system="Be brief.")
    reply = client.messages.create(model=MODEL, max_tokens=1, messages=ASK, system="Be brief.")
    used = reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0)
    assert counted.input_tokens == used
    without_system = client.messages.count_tokens(model=MODEL, messages=ASK)
    assert without_system.input_tokens < counted.input_tokens


def test_stop_sequences_end_the_reply_and_are_named(client: anthropic.Anthropic) -> None:
    stops = ["e", "a", "o"]
    for stream in (False, True):
        if stream:
            with client.messages.stream(
                model=MODEL, max_tokens=40, messages=ASK, stop_sequences=stops
            ) as live:
                reply = live.get_final_message()
        else:
            reply = client.messages.create(
                model=MODEL, max_tokens=40, messages=ASK, stop_sequences=stops
            )
        text = "".join(block.text for block in reply.content if block.type == "text")
        assert not any(stop in text for stop in stops)
        if reply.stop_reason == "stop_sequence":
            assert reply.stop_sequence in stops
        else:
            assert reply.stop_sequence is None


def test_errors_are_anthropic_shaped(client: anthropic.Anthropic, url: str) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-opus-4", max_tokens=4, messages=ASK)
    assert missing.value.body["type"] == "error"  # type: ignore[index]
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]

    bad_bodies: list[dict[str, Any]] = [
        {"model": MODEL, "messages": ASK},  # max_tokens is required, as Anthropic's
        {"model": MODEL, "max_tokens": 0, "messages": ASK},
        {"model": MODEL, "max_tokens": 4, "messages": []},
        {"model": MODEL, "max_tokens": 4, "messages": ASK, "temperature": 1.5},
        {"model": MODEL, "max_tokens": 4, "messages": [{"role": "system", "content": "x"}]},
        {"model": MODEL, "max_tokens": 4, "messages": ASK, "tool_choice": {"type": "tool"}},
        {"model": MODEL, "max_tokens": 4, "messages": ASK, "stop_sequences": ["x"] * 17},
        {
            "model": MODEL,
            "max_tokens": 4,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
                    ],
                }
            ],
        },
        {
            "model": MODEL,
            "max_tokens": 4,
            "messages": ASK,
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        },
        {
            "model": MODEL,
            "max_tokens": 4,
            "messages": [*ASK, {"role": "assistant", "content": "The weather is"}],
        },
        {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": [{"x": 1}]}]},
    ]
    for body in bad_bodies:
        response = httpx.post(f"{url}/v1/messages", json=body, timeout=60)
        assert response.status_code == 400, (body, response.text)
        error = response.json()
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"]
    unknown = httpx.post(f"{url}/v1/messages/batches", json={}, timeout=60)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"


def test_a_prompt_longer_than_the_context_says_prompt_is_too_long(
    client: anthropic.Anthropic,
) -> None:
    long_ask = [{"role": "user", "content": "word " * 3000}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model=MODEL, max_tokens=4, messages=long_ask)  # type: ignore[arg-type]
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("prompt is too long: ")


def test_a_stream_started_before_its_first_token_pings_and_reports_errors_as_events(
    client: anthropic.Anthropic, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when a long prompt is still being read: the stream starts at once and pings until
    # the reply comes; an error found after that is an error event, not a status.
    monkeypatch.setattr(anthropic_routes, "FIRST_EVENT_WAIT_S", 0.0)
    monkeypatch.setattr(anthropic_routes, "PING_EVERY_S", 0.001)
    ask: dict[str, Any] = {"model": MODEL, "max_tokens": 12, "messages": ASK, "extra_body": GREEDY}
    whole = client.messages.create(**ask)
    with client.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]
    assert streamed.stop_reason == whole.stop_reason

    long_ask = [{"role": "user", "content": "word " * 3000}]
    body = {"model": MODEL, "max_tokens": 4, "messages": long_ask, "stream": True}
    with httpx.stream("POST", f"{url}/v1/messages", json=body, timeout=60) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    frames = [frame.split("\n") for frame in raw.split("\n\n") if frame]
    names = [lines[0].removeprefix("event: ") for lines in frames]
    assert names[0] == "message_start"
    assert set(names[1:-1]) == {"ping"}
    assert names[-1] == "error"
    error = json.loads(frames[-1][1].removeprefix("data: "))
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith("prompt is too long: ")
    live = client.messages.stream(model=MODEL, max_tokens=4, messages=long_ask)  # type: ignore[arg-type]
    with pytest.raises(anthropic.APIStatusError) as caught, live as events:
        events.get_final_message()  # the SDK raises the error event it reads
    assert "prompt is too long" in str(caught.value)


def test_the_key_is_accepted_as_x_api_key_or_bearer(
    serve: ServerFactory, tiny_coder_model: Path
) -> None:
    url = base_url(serve(tiny_coder_model, n_ctx=2048, api_key="k3y"))
    ask: dict[str, Any] = {"model": MODEL, "max_tokens": 2, "messages": ASK}
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "whatever-2025-01-01"}
    assert _client(url, api_key="k3y", default_headers=headers).messages.create(**ask)
    assert _client(url, api_key=None, auth_token="k3y").messages.create(**ask)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        _client(url, api_key="wrong").messages.create(**ask)
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]


def test_claude_code_is_named_in_the_usage_ledger(
    served: tuple[AppServices, TokenCounter], url: str
) -> None:
    services, counter = served
    claude = _client(url, default_headers={"User-Agent": "claude-cli/2.0.14 (external, cli)"})
    claude.messages.create(model=MODEL, max_tokens=3, messages=ASK)
    _client(url).messages.create(model=MODEL, max_tokens=3, messages=ASK)
    counter.wait_for_results(2)
    clients = [(row.source, row.client) for row in services.ledger.records()]
    assert clients == [("api", "Claude Code"), ("api", "anthropic-python")]


def test_a_thinking_model_streams_thinking_blocks(serve: ServerFactory, tmp_path: Path) -> None:
    # The template opens <think> in the generation prompt, so the reply starts inside it.
    template = HERMES_TOOLS_TEMPLATE.replace(
        "<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think>\n{% endif %}"
    )
    model = write_tiny_coder(tmp_path / "tiny-thinker.gguf", chat_template=template)
    services = serve(model, n_ctx=2048)
    loaded = services.pool.default()
    assert loaded is not None
    assert loaded.info.opens_thinking
    client = _client(base_url(services))
    ask: dict[str, Any] = {
        "model": "tiny-thinker",
        "max_tokens": 8,
        "messages": ASK,
        "extra_body": GREEDY,
    }
    whole = client.messages.create(**ask)
    assert whole.content[0].type == "thinking"
    with client.messages.stream(**ask) as stream:
        kinds = {event.type for event in stream}
        streamed = stream.get_final_message()
    assert "thinking" in kinds  # the SDK's event for a thinking_delta
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in whole.content]


# -- the starter model (Gemma 3 270M): real replies ------------------------------------------

STARTER = "gemma-3-270m-q4_k_m"
# Greedy counting goes on far past a client's patience on any CPU.
COUNTING: dict[str, Any] = {
    "model": STARTER,
    "max_tokens": 1500,
    "messages": [{"role": "user", "content": "Count from 1 to 1000: 1, 2, 3, 4, 5, 6,"}],
    "temperature": 0,
}


def test_the_starter_model_answers_alike_streamed_and_whole(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, _ = starter
    client = _client(base_url(services))
    ask: dict[str, Any] = {
        "model": STARTER,
        "max_tokens": 24,
        "system": "Answer in one sentence.",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "extra_body": GREEDY,
    }
    whole = client.messages.create(**ask)
    assert whole.stop_reason in ("end_turn", "max_tokens")
    assert 0 < whole.usage.output_tokens <= 24
    (block,) = whole.content
    assert block.type == "text"
    assert block.text
    assert not block.text.startswith((" ", "\n"))
    with client.messages.stream(**ask) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == block.text
    assert final.usage.output_tokens == whole.usage.output_tokens
    counted = client.messages.count_tokens(
        model=STARTER, system=ask["system"], messages=ask["messages"]
    )
    assert counted.input_tokens == whole.usage.input_tokens + (
        whole.usage.cache_read_input_tokens or 0
    )


def test_a_client_that_leaves_mid_stream_frees_the_engine(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, recorder = starter
    url = base_url(services)
    with httpx.stream(
        "POST", f"{url}/v1/messages", json={**COUNTING, "stream": True}, timeout=60
    ) as response:
        deltas = 0
        for line in response.iter_lines():
            if line == "event: content_block_delta":
                deltas += 1
            if deltas >= 5:
                break  # leaving the block closes the connection
    (first,) = recorder.wait_for_results(1, timeout_s=60)
    assert first.finish_reason == "cancelled"
    assert first.completion_tokens < 1500
    after = _client(url).messages.create(
        model=STARTER, max_tokens=4, messages=COUNTING["messages"], extra_body=GREEDY
    )
    assert after.usage.output_tokens == 4


def test_a_non_streaming_client_that_gives_up_frees_the_engine(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, recorder = starter
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base_url(services)}/v1/messages", json=COUNTING, timeout=1.0)
    (first,) = recorder.wait_for_results(1, timeout_s=60)
    assert first.finish_reason == "cancelled"
