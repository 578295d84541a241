"""Structured output in both dialects: a schema too large or too deep for a grammar is a 400 that
names the field and the limit, and the server keeps answering (issue 11, part 1)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.engine.grammar_limits import MAX_REPETITION
from app.core.server import response_format
from app.core.server.errors import ApiError
from app.core.server.response_format import off_the_loop
from tests.server.conftest import WEATHER_TOOL, ServerFactory, base_url

ASK = [{"role": "user", "content": "Answer in JSON."}]
HUGE_STRING = {"type": "string", "maxLength": 1_000_000}


@pytest.fixture
def url(serve: ServerFactory, tiny_coder_model: Path) -> str:
    return base_url(serve(tiny_coder_model, n_ctx=1024))


def test_the_issues_curl_reproducer_is_a_400_and_the_server_lives_on(url: str) -> None:
    body = (
        '{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema",'
        '"json_schema":{"name":"x","schema":{"type":"string","maxLength":1000000}}}}'
    )
    # curl exactly as the issue ran it, when curl is here; httpx otherwise.
    try:
        curl = subprocess.run(
            [
                "curl",
                "-s",
                "-w",
                "\n%{http_code}",
                f"{url}/v1/chat/completions",
                "-H",
                "content-type: application/json",
                "-d",
                body,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        text, status = curl.stdout.rsplit("\n", 1)
    except FileNotFoundError:
        response = httpx.post(
            f"{url}/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
            timeout=60,
        )
        text, status = response.text, str(response.status_code)
    assert status == "400"
    error = json.loads(text)["error"]
    assert error["param"] == "response_format.json_schema.schema.maxLength"
    assert str(MAX_REPETITION) in error["message"]
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    reply = httpx.post(
        f"{url}/v1/chat/completions", json={"messages": ASK, "max_tokens": 2}, timeout=60
    )
    assert reply.status_code == 200


def _schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        (_schema_format(HUGE_STRING), "response_format.json_schema.schema.maxLength"),
        (
            _schema_format(
                {"type": "object", "properties": {"ids": {"type": "array", "minItems": 5000}}}
            ),
            "response_format.json_schema.schema.properties.ids.minItems",
        ),
        (
            {"type": "json_object", "schema": {"type": "object", "maxProperties": 10**6}},
            "response_format.schema.maxProperties",
        ),
        (
            _schema_format({"type": "string", "pattern": "^[a-z]{1,9999999}$"}),
            "response_format.json_schema.schema.pattern",
        ),
    ],
)
def test_openai_response_format_over_the_limits_names_the_field(
    url: str, response_format: dict[str, Any], param: str, stream: bool
) -> None:
    body = {"messages": ASK, "response_format": response_format, "stream": stream}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["param"] == param
    assert param in error["message"]
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("route", ["/api/chat", "/api/generate"])
def test_ollama_format_over_the_limits_names_the_field(url: str, route: str) -> None:
    schema = {"type": "object", "properties": {"name": HUGE_STRING}}
    body: dict[str, Any] = {"model": "tiny-coder", "format": schema, "stream": False}
    if route == "/api/chat":
        body["messages"] = ASK
    else:
        body["prompt"] = "Answer in JSON."
    response = httpx.post(f"{url}{route}", json=body, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert isinstance(error, str)  # Ollama's shape
    assert "format.properties.name.maxLength" in error
    assert str(MAX_REPETITION) in error


def _tool_with(parameters: dict[str, Any]) -> dict[str, Any]:
    function = {**WEATHER_TOOL["function"], "parameters": parameters}
    return {"type": "function", "function": function}


@pytest.mark.parametrize(
    "tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_tool_parameters_over_the_limits_name_the_field(url: str, tool_choice: Any) -> None:
    get_time = {"type": "function", "function": {**WEATHER_TOOL["function"], "name": "get_time"}}
    hostile = _tool_with({"type": "object", "properties": {"city": HUGE_STRING}})
    body = {"messages": ASK, "tools": [get_time, hostile], "tool_choice": tool_choice}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "tools.1.function.parameters.properties.city.maxLength"
    assert str(MAX_REPETITION) in error["message"]


def test_a_tool_that_is_not_forced_is_not_turned_into_a_grammar(url: str) -> None:
    # Without a forced call there is no grammar: the tool's schema is only shown to the model.
    parameters = {"type": "object", "properties": {"city": HUGE_STRING}}
    body = {"messages": ASK, "tools": [_tool_with(parameters)], "max_tokens": 2}
    assert httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60).status_code == 200


@pytest.mark.parametrize(
    "schema",
    [
        # nested arrays, each a level of the schema
        json.loads('{"type":"array","items":' * 200 + '{"type":"integer"}' + "}" * 200),
        {"type": "string", "pattern": "^" + "(" * 500 + "a" + ")" * 500 + "$"},
    ],
)
def test_deep_nesting_is_a_400_in_both_dialects(url: str, schema: dict[str, Any]) -> None:
    openai_reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"messages": ASK, "response_format": _schema_format(schema)},
        timeout=60,
    )
    assert openai_reply.status_code == 400
    assert "deep" in openai_reply.json()["error"]["message"]
    ollama_reply = httpx.post(
        f"{url}/api/chat",
        json={"model": "tiny-coder", "messages": ASK, "format": schema, "stream": False},
        timeout=60,
    )
    assert ollama_reply.status_code == 400
    assert "deep" in ollama_reply.json()["error"]
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("pattern", ["^(a$", "^a{2,1}$", "^[z-a]$", "^a**$"])
def test_a_bad_regex_is_a_400_never_a_500(url: str, pattern: str) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": pattern}}}
    openai_reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"messages": ASK, "response_format": _schema_format(schema)},
        timeout=60,
    )
    assert openai_reply.status_code == 400
    error = openai_reply.json()["error"]
    assert error["param"] == "response_format.json_schema.schema.properties.code.pattern"
    ollama_reply = httpx.post(
        f"{url}/api/generate",
        json={"model": "tiny-coder", "prompt": "x", "format": schema, "stream": False},
        timeout=60,
    )
    assert ollama_reply.status_code == 400
    assert "properties.code.pattern" in ollama_reply.json()["error"]


BOUNDED = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 6},
        "tags": {
            "type": "array",
            "items": {"type": "string", "enum": ["red", "blue"]},
            "minItems": 1,
            "maxItems": 3,
        },
    },
    "required": ["name", "tags"],
    "additionalProperties": False,
}


def _matches_bounded(text: str) -> bool:
    # strict=False: llama-cpp-python's string rule lets raw control characters through, which
    # strict JSON forbids; the shape is what this checks.
    document = json.loads(text, strict=False)
    return (
        isinstance(document, dict)
        and set(document) == {"name", "tags"}
        and isinstance(document["name"], str)
        and 1 <= len(document["name"]) <= 6
        and isinstance(document["tags"], list)
        and 1 <= len(document["tags"]) <= 3
        and all(tag in ("red", "blue") for tag in document["tags"])
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_a_bounded_schema_still_constrains_the_reply_in_both_dialects(url: str, seed: int) -> None:
    openai_reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={
            "messages": ASK,
            "response_format": _schema_format(BOUNDED),
            "max_tokens": 200,
            "seed": seed,
        },
        timeout=120,
    ).json()
    choice = openai_reply["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert _matches_bounded(choice["message"]["content"])
    ollama_reply = httpx.post(
        f"{url}/api/chat",
        json={
            "model": "tiny-coder",
            "messages": ASK,
            "format": BOUNDED,
            "stream": False,
            "options": {"seed": seed, "num_predict": 200},
        },
        timeout=120,
    ).json()
    assert ollama_reply["done_reason"] == "stop"
    assert _matches_bounded(ollama_reply["message"]["content"])


def test_conversion_runs_on_a_worker_thread_while_the_loop_keeps_serving() -> None:
    release = threading.Event()

    async def main() -> str | bool:
        # Were the work run on the event loop, it would wait out its 30 s holding the loop, and
        # the loop could not release it: the result would be False.
        work = asyncio.ensure_future(
            off_the_loop(lambda: release.wait(30) and threading.current_thread().name)
        )
        await asyncio.sleep(0.05)
        release.set()
        return await work

    worker = asyncio.run(main())
    assert worker
    assert worker != threading.main_thread().name


def test_a_conversion_past_its_deadline_is_a_400(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(response_format, "CONVERSION_DEADLINE_S", 0.1)
    release = threading.Event()

    async def main() -> None:
        try:
            await off_the_loop(lambda: release.wait(30))
        finally:
            release.set()  # the worker thread cannot be stopped; let it finish

    with pytest.raises(ApiError) as caught:
        asyncio.run(main())
    assert caught.value.status == 400
    assert "took over" in caught.value.message
