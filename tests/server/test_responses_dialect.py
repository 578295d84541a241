"""OpenAI's Responses API over real HTTP, through the openai SDK's own ``client.responses``.

Every response and every streamed event is validated by the SDK's own types. The tiny coder
model has random weights, so its words are noise: the assertions are about what the server and
its grammars guarantee (shapes, counts, finish states, equal text by two paths).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from app.core.server import responses_routes
from app.core.services import AppServices
from tests.server.conftest import ServerFactory, TokenCounter, base_url

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo"]}},
        "required": ["city"],
    },
    "strict": True,
}
TIME: dict[str, Any] = {"type": "function", "name": "get_time", "parameters": None}
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CODEX_AGENT = "codex_cli_rs/0.63.0 (Ubuntu 24.4.0; x86_64) xterm-256color"


class City(BaseModel):
    # No free text: random weights write byte soup that need not end or be valid UTF-8.
    name: Literal["Paris", "Oslo", "Lima"]
    size: Literal["small", "big"]
    coastal: bool


@pytest.fixture
def coder(serve: ServerFactory, tiny_coder_model: Path) -> tuple[AppServices, TokenCounter]:
    services = serve(tiny_coder_model, n_ctx=2048)
    counter = TokenCounter()
    services.pool.add_observer(counter)
    return services, counter


@pytest.fixture
def url(coder: tuple[AppServices, TokenCounter]) -> str:
    return base_url(coder[0])


def _client(url: str, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="any",
        max_retries=0,
        _strict_response_validation=True,
        default_headers=headers or None,
    )


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return _client(url)


def _sse(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw events of a streamed response, each checked against the SDK's event types."""
    with httpx.stream("POST", f"{url}/v1/responses", json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    frames = raw.split("\n\n")
    assert frames[-1] == ""
    events = []
    for frame in frames[:-1]:
        name, data = frame.split("\n")
        event = json.loads(data.removeprefix("data: "))
        assert name == f"event: {event['type']}"
        EVENTS.validate_python(event)
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def _assert_usage(response: Response) -> None:
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0


def test_a_string_input_answers_one_message(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="tiny-coder", input="Hi", max_output_tokens=6, temperature=0.7, metadata={"a": "b"}
    )
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.model == "tiny-coder"
    assert response.metadata == {"a": "b"}
    (message,) = response.output
    assert message.type == "message"
    assert message.role == "assistant"
    (part,) = message.content
    assert part.type == "output_text"
    assert response.output_text == part.text
    _assert_usage(response)
    assert response.usage is not None
    assert 0 < response.usage.output_tokens <= 6
    if response.status == "incomplete":
        assert response.usage.output_tokens == 6
        assert response.incomplete_details is not None
        assert response.incomplete_details.reason == "max_output_tokens"
        assert message.status == "incomplete"
    else:
        assert response.status == "completed"
        assert response.incomplete_details is None


def test_streamed_events_come_in_order_and_agree_with_the_whole_response(
    client: openai.OpenAI, url: str
) -> None:
    body = {
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
        "instructions": "Be brief.",
        "max_output_tokens": 12,
        "seed": 5,
    }
    whole = client.responses.create(
        input=body["input"],
        instructions="Be brief.",
        max_output_tokens=12,
        extra_body={"seed": 5},  # not OpenAI's; Homefire reads it as the chat route does
    )
    events = _sse(url, {**body, "stream": True})
    kinds = [e["type"] for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        f"response.{whole.status}",
    ]
    assert set(kinds[4:-4]) <= {"response.output_text.delta"}
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done = next(e for e in events if e["type"] == "response.output_text.done")
    final = Response.model_validate(events[-1]["response"])
    assert deltas == done["text"] == final.output_text == whole.output_text
    assert final.usage is not None
    assert whole.usage is not None
    # The cached share differs: the second request reuses the first one's prompt.
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []


def test_the_sdk_stream_helper_assembles_the_same_response(client: openai.OpenAI) -> None:
    # A format makes the random model end on its own: the helper wants response.completed.
    ask: dict[str, Any] = {
        "model": "tiny-coder",
        "input": "A city?",
        "text_format": City,
        "max_output_tokens": 300,
        "extra_body": {"seed": 2},
    }
    whole = client.responses.parse(**ask)
    seen: list[str] = []
    with client.responses.stream(**ask) as stream:
        for event in stream:
            seen.append(event.type)
        final = stream.get_final_response()
    assert final.output_text == whole.output_text
    assert final.output_parsed == whole.output_parsed
    assert isinstance(final.output_parsed, City)
    assert seen[0] == "response.created"
    assert seen[-1] == "response.completed"
    assert "response.output_text.delta" in seen


def test_a_forced_function_call_is_a_function_call_item(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="tiny-coder",
        input="Weather in Paris?",
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=200,
        extra_body={"seed": 1},
    )
    assert response.status == "completed"
    calls = [item for item in response.output if item.type == "function_call"]
    (call,) = calls
    assert call.name == "get_weather"
    assert json.loads(call.arguments)["city"] in ("Paris", "Oslo")
    assert call.status == "completed"
    assert call.id is not None
    assert call.id.startswith("fc_")
    assert response.tool_choice.type == "function"  # type: ignore[union-attr]


def test_streamed_function_call_arguments_add_up(url: str) -> None:
    body = {
        "input": "Weather?",
        "tools": [WEATHER],
        "tool_choice": "required",
        "max_output_tokens": 200,
        "seed": 2,
        "stream": True,
    }
    events = _sse(url, body)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    call_added = next(e for e in added if e["item"]["type"] == "function_call")
    assert call_added["item"]["arguments"] == ""
    index = call_added["output_index"]
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas
    assert all(e["output_index"] == index for e in deltas)
    (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert "".join(e["delta"] for e in deltas) == done["arguments"]
    assert json.loads(done["arguments"])["city"] in ("Paris", "Oslo")
    final = Response.model_validate(events[-1]["response"])
    assert final.status == "completed"
    assert final.output[index].type == "function_call"
    assert final.output[index].arguments == done["arguments"]  # type: ignore[union-attr]


def test_a_function_call_round_trip_renders_the_output(client: openai.OpenAI) -> None:
    ask: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(
        model="tiny-coder",
        input=ask,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=200,
        extra_body={"seed": 3},
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    # The SDK's own items go back as input, as the Responses docs show.
    history = [*ask, call.model_dump(exclude_none=True)]
    answered = [
        *history,
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ]
    second = client.responses.create(
        model="tiny-coder",
        input=answered,
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=5,
    )
    assert second.status in ("completed", "incomplete")
    assert second.output
    longer = client.responses.create(
        model="tiny-coder",
        input=[*history, {**answered[-1], "output": "Sunny, 21 C, light wind from the west"}],
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=1,
    )
    # The function's output reached the prompt: a longer output, a longer prompt.
    assert second.usage is not None
    assert longer.usage is not None
    assert longer.usage.input_tokens > second.usage.input_tokens


def test_a_json_schema_format_is_enforced(client: openai.OpenAI) -> None:
    response = client.responses.parse(
        model="tiny-coder",
        input="A city?",
        text_format=City,
        max_output_tokens=300,
        extra_body={"seed": 4},
    )
    assert response.status == "completed"
    assert isinstance(response.output_parsed, City)
    assert response.text is not None
    assert response.text.format is not None
    assert response.text.format.type == "json_schema"


def test_a_json_object_format_answers_an_object(url: str) -> None:
    body = {
        "input": "JSON please",
        "text": {"format": {"type": "json_object"}},
        "max_output_tokens": 300,
        "seed": 1,
    }
    reply = httpx.post(f"{url}/v1/responses", json=body, timeout=120).json()
    response = Response.model_validate(reply)
    assert response.status == "completed"
    assert isinstance(json.loads(response.output_text), dict)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("store", True),
        ("previous_response_id", "resp_123"),
        ("conversation", "conv_123"),
        ("background", True),
    ],
)
def test_what_needs_stored_responses_is_refused_and_store_false_is_fine(
    coder: tuple[AppServices, TokenCounter], client: openai.OpenAI, field: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(input="Hi", max_output_tokens=2, **{field: value})
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == field
    assert error["code"] == "unsupported_parameter"
    assert "stateless" in error["message"]
    assert coder[1].results == []
    kept = client.responses.create(input="Hi", max_output_tokens=2, store=False)
    assert kept.store is False


def test_an_unknown_model_is_404(coder: tuple[AppServices, TokenCounter], url: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        _client(url).responses.create(model="gpt-5-codex", input="Hi")
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "model_not_found"
    assert "tiny-coder" in error["message"]
    assert coder[1].results == []


# What Codex CLI sends on a second turn (its request shape, its agent string): a developer
# message, an earlier reasoning item and tool round trip, its shell function, hosted web search.
CODEX_TURN: dict[str, Any] = {
    "model": "tiny-coder",
    "instructions": "You are a coding agent running in the Codex CLI.",
    "input": [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions>read-only</permissions>"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "ls"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "shell",
            "arguments": '{"command": ["ls"]}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "README.md\nsrc"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "shell",
            "description": "Runs a shell command",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                "required": ["command"],
                "additionalProperties": False,
            },
        },
        {"type": "web_search", "external_web_access": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning": None,
    "store": False,
    "stream": True,
    "include": ["reasoning.encrypted_content"],
    "prompt_cache_key": "0199a-session",
    "max_output_tokens": 3,
}


def test_a_codex_turn_streams_and_is_named_in_the_usage_ledger(
    coder: tuple[AppServices, TokenCounter], url: str
) -> None:
    services, counter = coder
    with httpx.stream(
        "POST",
        f"{url}/v1/responses",
        json=CODEX_TURN,
        headers={"User-Agent": CODEX_AGENT, "OpenAI-Beta": "responses=experimental"},
        timeout=120,
    ) as response:
        assert response.status_code == 200, response.read()
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    final = Response.model_validate(json.loads(lines[-1].removeprefix("data: "))["response"])
    assert final.status in ("completed", "incomplete")
    assert [tool.type for tool in final.tools] == ["function", "web_search"]
    counter.wait_for_results(1)
    (row,) = services.ledger.records()
    assert (row.source, row.client, row.model) == ("api", "Codex CLI", "tiny-coder")
    assert final.usage is not None
    assert row.tokens.completion == final.usage.output_tokens


@pytest.fixture(scope="module")
def thinking_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny coder with a template whose generation prompt opens ``<think>``."""
    from tests.server.tiny_coder import HERMES_TOOLS_TEMPLATE, write_tiny_coder

    template = HERMES_TOOLS_TEMPLATE.replace(
        "<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think>\n{% endif %}"
    )
    assert template != HERMES_TOOLS_TEMPLATE
    return write_tiny_coder(tmp_path_factory.mktemp("models") / "tiny-thinker.gguf", template)


def test_thinking_is_a_reasoning_item_with_its_tokens_counted(
    serve: ServerFactory, thinking_model: Path
) -> None:
    url = base_url(serve(thinking_model, n_ctx=2048))
    # Random weights never close the block: the whole reply is thinking, cut at the limit.
    body = {"input": "Hi", "max_output_tokens": 40, "seed": 1}
    reply = Response.model_validate(
        httpx.post(f"{url}/v1/responses", json=body, timeout=120).json()
    )
    reasoning = reply.output[0]
    assert reasoning.type == "reasoning"
    assert reasoning.content
    assert reasoning.content[0].text
    assert reply.usage is not None
    # All of the reply was thinking, so all of its tokens were.
    assert reply.usage.output_tokens_details.reasoning_tokens == reply.usage.output_tokens
    events = _sse(url, {**body, "stream": True})
    deltas = [e["delta"] for e in events if e["type"] == "response.reasoning_text.delta"]
    assert "".join(deltas) == reasoning.content[0].text


def test_a_forced_call_on_a_thinking_model_is_a_call_not_reasoning(
    serve: ServerFactory, thinking_model: Path
) -> None:
    # The grammar shapes the reply from its first token, inside the block the template opened.
    client = _client(base_url(serve(thinking_model, n_ctx=2048)))
    response = client.responses.create(
        input="Weather?",
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=200,
        extra_body={"seed": 1},
    )
    assert [item.type for item in response.output] == ["function_call"]
    parsed = client.responses.parse(
        input="A city?", text_format=City, max_output_tokens=300, extra_body={"seed": 1}
    )
    assert isinstance(parsed.output_parsed, City)


# -- the starter model (Gemma 3 270M): real replies, real tool use, a client that leaves ------

STARTER = "gemma-3-270m-q4_k_m"
# Greedy counting goes on far past a client's patience on any CPU.
COUNTING = {
    "instructions": "Count from 1 to 1000, separated by commas. Never stop early.",
    "input": "1, 2, 3, 4, 5, 6,",
    "max_output_tokens": 1500,
    "temperature": 0,
}


def test_the_starter_model_answers_alike_streamed_and_whole(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    client = _client(base_url(starter[0]))
    ask: dict[str, Any] = {
        "model": STARTER,
        "instructions": "Answer in one sentence.",
        "input": "What is the capital of France?",
        "max_output_tokens": 24,
        "temperature": 0,
    }
    whole = client.responses.create(**ask)
    assert whole.status in ("completed", "incomplete")
    assert whole.output_text
    _assert_usage(whole)
    events = list(client.responses.create(**ask, stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == whole.output_text
    last = events[-1]
    assert last.type == f"response.{whole.status}"
    assert last.response.usage is not None  # type: ignore[union-attr]
    assert whole.usage is not None
    assert last.response.usage.output_tokens == whole.usage.output_tokens  # type: ignore[union-attr]


def test_the_starter_model_calls_a_function_and_answers_its_output(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    client = _client(base_url(starter[0]))
    ask: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = client.responses.create(
        model=STARTER,
        input=ask,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice="required",
        max_output_tokens=100,
        temperature=0,
    )
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments)["city"] in ("Paris", "Oslo")
    second = client.responses.create(
        model=STARTER,
        input=[
            *ask,
            call.model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
        max_output_tokens=40,
        temperature=0,
    )
    assert second.status in ("completed", "incomplete")
    assert second.usage is not None
    assert first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens
    assert second.output


def test_a_client_that_leaves_mid_stream_cancels_the_generation(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, counter = starter
    url = base_url(services)
    with httpx.stream(
        "POST", f"{url}/v1/responses", json={**COUNTING, "stream": True}, timeout=60
    ) as response:
        deltas = 0
        for line in response.iter_lines():
            if line == "event: response.output_text.delta":
                deltas += 1
            if deltas >= 5:
                break  # leaving the block closes the connection
    (first,) = counter.wait_for_results(1, timeout_s=60)
    assert first.finish_reason == "cancelled"
    assert first.completion_tokens < 1500
    after = _client(url).responses.create(input="Hi", max_output_tokens=4, temperature=0)
    assert after.usage is not None
    assert 0 < after.usage.output_tokens <= 4


def test_a_whole_response_client_that_gives_up_cancels_the_generation(
    starter: tuple[AppServices, TokenCounter],
) -> None:
    services, counter = starter
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base_url(services)}/v1/responses", json=COUNTING, timeout=1.0)
    (first,) = counter.wait_for_results(1, timeout_s=60)
    assert first.finish_reason == "cancelled"
    assert first.completion_tokens < 1500


def test_a_stream_started_before_its_first_token_keeps_alive_and_fails_as_an_event(
    client: openai.OpenAI, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As when a long prompt is still being read: the stream starts at once, with keep-alive
    # comments until the reply comes; an error found after that ends it as response.failed.
    monkeypatch.setattr(responses_routes, "FIRST_EVENT_WAIT_S", 0.0)
    monkeypatch.setattr(responses_routes, "KEEPALIVE_EVERY_S", 0.001)
    ask: dict[str, Any] = {"input": "Hi", "max_output_tokens": 8, "extra_body": {"seed": 7}}
    whole = client.responses.create(**ask)
    events = list(client.responses.create(**ask, stream=True))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == whole.output_text

    body = {"input": " ".join(str(n) for n in range(3000)), "stream": True}  # > the context
    with httpx.stream("POST", f"{url}/v1/responses", json=body, timeout=60) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    frames = [frame for frame in raw.split("\n\n") if frame]
    # Keep-alives are SSE comments, which clients skip; how many depends on the machine.
    assert {f for f in frames if f.startswith(":")} <= {": keep-alive"}
    named = [json.loads(f.split("\n")[1].removeprefix("data: ")) for f in frames if f[0] != ":"]
    for event in named:
        EVENTS.validate_python(event)
    assert [e["type"] for e in named] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]
    assert [e["sequence_number"] for e in named] == [0, 1, 2]
    failed = Response.model_validate(named[-1]["response"])
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.code == "invalid_prompt"
    assert "context" in failed.error.message
