"""The rest of the OpenAI dialect over real HTTP: tools, response formats, FIM, embeddings.

The tiny coder model has random weights, so its free text is noise; every assertion here is
about what a grammar or the server guarantees, never about what the model chose to say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.server.conftest import WEATHER_TOOL, ServerFactory, base_url

TIME_TOOL: dict[str, Any] = {"type": "function", "function": {"name": "get_time"}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture
def url(serve: ServerFactory, tiny_coder_model: Path) -> str:
    return base_url(serve(tiny_coder_model, n_ctx=2048))


@pytest.fixture
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key="any", max_retries=0, _strict_response_validation=True
    )


def _sse_events(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    # Byte-exact framing: every event is "data: ...\n\n", the last one [DONE].
    frames = raw.split("\n\n")
    assert frames[-1] == ""
    assert frames[-2] == "data: [DONE]"
    assert all(f.startswith("data: {") for f in frames[:-2])
    return [json.loads(f.removeprefix("data: ")) for f in frames[:-2]]


def test_model_detail_has_the_context_length(client: openai.OpenAI) -> None:
    model = client.models.retrieve("tiny-coder")
    assert model.model_extra is not None
    assert model.model_extra["context_length"] == 2048


def test_required_tool_call_is_forced_and_returned_in_openai_shape(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny-coder",
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL, TIME_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=200,
        seed=1,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] in ("Paris", "Oslo")
    assert len(call.id) == 9


def test_streamed_tool_call_deltas_have_the_exact_shape(url: str) -> None:
    body = {
        "messages": ASK,
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "max_tokens": 200,
        "seed": 2,
        "stream": True,
    }
    events = _sse_events(url, body)
    fragments = [
        fragment
        for event in events
        for fragment in event["choices"][0]["delta"].get("tool_calls", [])
    ]
    assert fragments
    first, *rest = fragments
    assert set(first) == {"index", "id", "type", "function"}
    assert first["type"] == "function"
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    assert rest
    for fragment in rest:
        assert set(fragment) == {"index", "function"}
        assert set(fragment["function"]) == {"arguments"}
        assert fragment["index"] == 0
    arguments = "".join(f["function"]["arguments"] for f in rest)
    assert json.loads(arguments)["city"] in ("Paris", "Oslo")
    finishes = [e["choices"][0]["finish_reason"] for e in events]
    assert finishes[-1] == "tool_calls"
    assert all(f is None for f in finishes[:-1])


def test_the_sdk_stream_helper_accumulates_the_tool_call(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="tiny-coder",
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        max_tokens=200,
        seed=3,
    ) as stream:
        for _event in stream:
            pass
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert final.choices[0].finish_reason == "tool_calls"


def test_tool_choice_naming_an_unknown_function_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="tiny-coder",
            messages=ASK,  # type: ignore[arg-type]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "rm_rf"}},
        )
    assert caught.value.body["param"] == "tool_choice"  # type: ignore[index]


def test_a_tool_conversation_renders_through_the_template(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny-coder",
        messages=[
            *ASK,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "abcdefghi",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "abcdefghi", "content": "18 C, sunny"},
        ],  # type: ignore[list-item]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_tokens=4,
    )
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 100  # the tool list and the exchange were rendered


class Verdict(BaseModel):
    mood: Literal["happy", "sad"]
    score: int
    sure: bool


def test_json_schema_is_enforced_through_parse(client: openai.OpenAI) -> None:
    reply = client.chat.completions.parse(
        model="tiny-coder",
        messages=[{"role": "user", "content": "Judge the mood."}],
        response_format=Verdict,
        max_tokens=120,
        seed=4,
    )
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, Verdict)


def test_json_object_mode_answers_an_object(url: str) -> None:
    body = {
        "messages": [{"role": "user", "content": "JSON please"}],
        "response_format": {
            "type": "json_object",
            "schema": {
                "type": "object",
                "properties": {"ok": {"type": "boolean"}},
                "required": ["ok"],
                "additionalProperties": False,
            },
        },
        "max_tokens": 60,
        "seed": 5,
    }
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).json()
    assert isinstance(json.loads(reply["choices"][0]["message"]["content"])["ok"], bool)


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 123}}},
        {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"not": {"type": "string"}}},
        },
        {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"$ref": "https://evil.example/s"}},
        },
        {"type": "json_schema", "json_schema": {"name": "x"}},
        {"type": "xml"},
    ],
)
def test_a_format_that_cannot_be_enforced_is_400_never_ignored(
    url: str, response_format: dict[str, Any]
) -> None:
    body = {"messages": ASK, "response_format": response_format, "max_tokens": 4}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["param"].startswith("response_format")


def test_a_broken_pattern_is_400_before_streaming(url: str) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a$"}}}
    body = {
        "messages": ASK,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        "stream": True,
    }
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert "regex" in response.json()["error"]["message"]


def test_max_completion_tokens_and_stop_are_honoured(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny-coder",
        messages=ASK,
        max_completion_tokens=3,  # type: ignore[arg-type]
    )
    assert reply.usage is not None
    assert reply.usage.completion_tokens <= 3
    forced = client.chat.completions.create(
        model="tiny-coder",
        messages=ASK,  # type: ignore[arg-type]
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        stop=['"arguments"'],
        max_tokens=200,
        seed=1,
    )
    # The grammar writes the name first, so the stop string cuts the call before its arguments.
    assert forced.choices[0].finish_reason == "stop"
    assert '"arguments"' not in (forced.choices[0].message.content or "")


def test_same_seed_same_reply(client: openai.OpenAI) -> None:
    def ask() -> str | None:
        return (
            client.chat.completions.create(
                model="tiny-coder",
                messages=ASK,
                max_tokens=8,
                seed=42,  # type: ignore[arg-type]
            )
            .choices[0]
            .message.content
        )

    assert ask() == ask()


def test_suffix_is_wrapped_in_the_models_own_fim_tokens(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="tiny-coder", prompt="def add(a, b):\n    ", suffix="\n    return c", max_tokens=4
    )
    assert reply.usage is not None
    # <PRE> + prefix + <SUF> + suffix + <MID> (+ BOS): the three FIM tokens are single tokens.
    raw = client.completions.create(
        model="tiny-coder",
        prompt="<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n    return c<|fim_middle|>",
        max_tokens=4,
    )
    assert raw.usage is not None
    assert reply.usage.prompt_tokens == raw.usage.prompt_tokens


def test_fim_tokens_typed_into_the_code_stay_text(client: openai.OpenAI) -> None:
    plain = client.completions.create(
        model="tiny-coder", prompt="x = 1", suffix="fim_middle", max_tokens=1
    )
    spelled = client.completions.create(
        model="tiny-coder", prompt="x = 1", suffix="<|fim_middle|>", max_tokens=1
    )
    assert plain.usage is not None
    assert spelled.usage is not None
    assert spelled.usage.prompt_tokens > plain.usage.prompt_tokens


def test_suffix_on_a_model_without_fim_tokens_is_400(
    serve: ServerFactory, tiny_model: Path
) -> None:
    url = base_url(serve(tiny_model))
    body = {"prompt": "def f(", "suffix": "):", "max_tokens": 2}
    response = httpx.post(f"{url}/v1/completions", json=body)
    assert response.status_code == 400
    assert "fill-in-the-middle" in response.json()["error"]["message"]


def test_embeddings_float_and_base64_through_the_sdk(client: openai.OpenAI, url: str) -> None:
    floats = client.embeddings.create(
        model="tiny-coder", input=["Hello world", "the a"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1]
    vector = floats.data[0].embedding
    assert abs(sum(x * x for x in vector) - 1.0) < 1e-3  # normalised
    assert floats.usage.prompt_tokens > 0
    # The SDK asks for base64 by default and decodes it after parsing (so not strictly
    # validated: its own validator expects the decoded list).
    lenient = openai.OpenAI(base_url=f"{url}/v1", api_key="any", max_retries=0)
    decoded = lenient.embeddings.create(model="tiny-coder", input="Hello world")
    assert decoded.data[0].embedding == pytest.approx(vector, abs=1e-6)


def test_embeddings_of_an_input_longer_than_their_context_is_400(url: str) -> None:
    response = httpx.post(f"{url}/v1/embeddings", json={"input": "Hello world " * 2000}, timeout=60)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
