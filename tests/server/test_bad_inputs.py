"""Bad requests in both dialects are clear 4xx answers, never a 500 or a hang, and the server
keeps serving (the HTTP API's bad inputs 24 to 31 of the security review)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.services import AppServices
from tests.server.conftest import ServerFactory, TokenCounter, base_url

ASK = [{"role": "user", "content": "Hi"}]
N_CTX = 256


@pytest.fixture
def served(serve: ServerFactory, tiny_model: Path) -> tuple[AppServices, TokenCounter]:
    services = serve(tiny_model, n_ctx=N_CTX)
    counter = TokenCounter()
    services.pool.add_observer(counter)
    return services, counter


@pytest.fixture
def url(served: tuple[AppServices, TokenCounter]) -> str:
    return base_url(served[0])


def _post(url: str, route: str, body: bytes | dict[str, Any], **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{url}{route}",
        content=content,
        headers={"content-type": "application/json", **headers},
        timeout=60,
    )


def _assert_openai_400(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert "Traceback" not in error["message"]
    return error


def _assert_ollama_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert isinstance(response.json()["error"], str)


# -- 24: invalid JSON and wrong shapes ------------------------------------------------------

NOT_OBJECTS = [b"{", b"not json", b"[]", b"42", b"null", b'"text"', b"", b"[" * 100_000]
WRONG_CHAT_SHAPES: list[dict[str, Any]] = [
    {"messages": "x"},
    {"messages": [{}]},
    {"messages": [{"role": 123}]},
    {"messages": [{"role": "user", "content": 123}]},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": {"deep": 1}}]}]},
    {"messages": [None]},
    {"messages": ASK, "stream": "yes please"},
    {"messages": ASK, "stop": [1, 2]},
    {"messages": ASK, "tools": "all of them"},
    {"messages": ASK, "tools": [{"function": "x"}]},
    {"messages": ASK, "tool_choice": 5},
    {"messages": ASK, "response_format": "json"},
]


@pytest.mark.parametrize("payload", NOT_OBJECTS)
@pytest.mark.parametrize(
    "route", ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/infill"]
)
def test_bodies_that_are_not_json_objects_are_openai_400s(
    url: str, route: str, payload: bytes
) -> None:
    _assert_openai_400(_post(url, route, payload))


@pytest.mark.parametrize("payload", NOT_OBJECTS)
@pytest.mark.parametrize("route", ["/api/chat", "/api/generate", "/api/embed"])
def test_bodies_that_are_not_json_objects_are_ollama_400s(
    url: str, route: str, payload: bytes
) -> None:
    _assert_ollama_400(_post(url, route, payload))


@pytest.mark.parametrize("body", WRONG_CHAT_SHAPES)
def test_wrong_chat_shapes_are_400s_in_both_dialects(
    served: tuple[AppServices, TokenCounter], url: str, body: dict[str, Any]
) -> None:
    _assert_openai_400(_post(url, "/v1/chat/completions", body))
    if set(body) == {"messages"}:  # the other fields are OpenAI's
        _assert_ollama_400(_post(url, "/api/chat", {**body, "stream": False}))
    assert served[1].results == []


def _deep_schema(levels: int) -> str:
    return '{"type":"object","properties":{"a":' * levels + "{}" + "}}" * levels


def _chat_with(route: str, messages: str, extra: str = "") -> bytes:
    head = '{"max_tokens":2,"stream":false,"model":"","messages":[{"role":"user","content":"Hi"}'
    return f"{head}{messages}]{extra}}}".encode()


@pytest.mark.parametrize("levels", [60, 2000])
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/api/chat"])
def test_deeply_nested_tools_and_tool_calls_are_400s_never_500s(
    url: str, route: str, levels: int
) -> None:
    deep = _deep_schema(levels)
    tools = f',"tools":[{{"type":"function","function":{{"name":"f","parameters":{deep}}}}}]'
    call = '{"id":"c1","type":"function","function":{"name":"f","arguments":%s}}'
    assistant = ',{"role":"assistant","content":"","tool_calls":[%s]}'
    bodies = [
        _chat_with(route, "", tools),
        _chat_with(route, "", tools + ',"tool_choice":"required"'),
        _chat_with(route, assistant % (call % deep)),
    ]
    for body in bodies:
        response = _post(url, route, body)
        assert response.status_code == 400, response.text
    # Arguments as JSON text too deep to parse stay text: served, or too long, never a 500.
    as_text = _post(url, route, _chat_with(route, assistant % (call % json.dumps(deep))))
    assert as_text.status_code in (200, 400)
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


# -- 25: not JSON, from a foreign page --------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_simple_post_from_a_foreign_page_has_no_effect(
    served: tuple[AppServices, TokenCounter], url: str, content_type: str
) -> None:
    # What a browser sends cross-site without a preflight.
    response = httpx.post(
        f"{url}/v1/chat/completions",
        content=json.dumps({"messages": ASK, "max_tokens": 2}),
        headers={"content-type": content_type, "origin": "https://evil.example"},
        timeout=60,
    )
    assert response.status_code in (403, 415)
    assert "access-control-allow-origin" not in response.headers
    assert served[1].results == []


# -- 26: unknown model ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-4o", "messages": ASK}),
        ("/v1/completions", {"model": "gpt-4o", "prompt": "x"}),
        ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}),
    ],
)
def test_an_unknown_model_is_404_listing_the_served_ids(
    served: tuple[AppServices, TokenCounter], url: str, route: str, body: dict[str, Any]
) -> None:
    response = _post(url, route, body)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert "tiny-chatml" in error["message"]
    assert served[1].results == []  # no silent fallback to the loaded model
    detail = httpx.get(f"{url}/v1/models/gpt-4o", timeout=10)
    assert detail.status_code == 404
    assert "tiny-chatml" in detail.json()["error"]["message"]


@pytest.mark.parametrize("route", ["/api/chat", "/api/generate", "/api/show", "/api/embed"])
def test_an_unknown_model_is_an_ollama_404_naming_the_served_model(url: str, route: str) -> None:
    body = {"model": "llama3:8b", "messages": ASK, "prompt": "x", "input": "x", "stream": False}
    response = _post(url, route, body)
    assert response.status_code == 404
    assert "tiny-chatml" in response.json()["error"]


# -- 27: a prompt longer than the context -----------------------------------------------------


def test_prompts_longer_than_the_context_are_400s_with_both_counts_ten_times_over(
    url: str,
) -> None:
    long_chat = [{"role": "user", "content": "Hello world " * 200}]
    for attempt in range(10):
        for route, body in (
            ("/v1/chat/completions", {"messages": long_chat}),
            ("/v1/completions", {"prompt": "Hello world " * 200}),
        ):
            response = _post(url, route, {**body, "stream": attempt % 2 == 0})
            # Before any SSE byte: a JSON answer with the status, not an event stream.
            assert response.headers["content-type"] == "application/json"
            error = _assert_openai_400(response)
            assert error["code"] == "context_length_exceeded"
            assert error["n_ctx"] == N_CTX
            assert error["n_prompt_tokens"] > N_CTX
        ollama = _post(
            url, "/api/chat", {"model": "", "messages": long_chat, "stream": attempt % 2 == 0}
        )
        _assert_ollama_400(ollama)
        assert str(N_CTX) in ollama.json()["error"]
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    assert _post(url, "/v1/chat/completions", {"messages": ASK, "max_tokens": 2}).status_code == 200


# -- 28: max_tokens out of range --------------------------------------------------------------


def _prompt_leaving(url: str, room: int) -> str:
    """A raw prompt that leaves ``room`` tokens of the context (tokenizing is deterministic)."""

    def tokens(text: str) -> int:
        reply = _post(url, "/v1/completions", {"prompt": text, "max_tokens": 1}).json()
        return int(reply["usage"]["prompt_tokens"])

    one, two = tokens("Hello world"), tokens("Hello world Hello world")
    repeats = (N_CTX - room - one) // (two - one) + 1
    text = " ".join(["Hello world"] * repeats)
    while tokens(text) < N_CTX - room:
        text += " x"
    return text


def test_a_huge_max_tokens_is_clamped_at_the_context_end(url: str) -> None:
    # A few tokens of room: a random-weight model rarely ends on its own that soon, and over
    # three seeds at least one reply runs into the context's end.
    prompt = _prompt_leaving(url, room=8)
    finishes = []
    for seed in (1, 2, 3):
        body = {"prompt": prompt, "max_tokens": 10**9, "temperature": 1.0, "seed": seed}
        whole = _post(url, "/v1/completions", body).json()
        usage = whole["usage"]
        assert usage["prompt_tokens"] + usage["completion_tokens"] <= N_CTX
        finish = whole["choices"][0]["finish_reason"]
        if finish == "length":
            assert usage["prompt_tokens"] + usage["completion_tokens"] == N_CTX
        finishes.append(finish)
        with httpx.stream(
            "POST", f"{url}/v1/completions", json={**body, "stream": True}, timeout=120
        ) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        # The stream always ends: one finish reason, then [DONE].
        assert lines[-1] == "data: [DONE]"
        reasons = [json.loads(line[6:])["choices"][0]["finish_reason"] for line in lines[:-1]]
        assert [r for r in reasons if r is not None] == [finish]
    assert "length" in finishes


@pytest.mark.parametrize("value", [0, -1, "abc", 1.5, []])
def test_max_tokens_that_is_not_a_positive_count_is_400(url: str, value: Any) -> None:
    for key in ("max_tokens", "max_completion_tokens"):
        error = _assert_openai_400(
            _post(url, "/v1/chat/completions", {"messages": ASK, key: value})
        )
        assert error["param"] == key
    _assert_ollama_400(
        _post(
            url,
            "/api/generate",
            {"model": "", "prompt": "x", "stream": False, "options": {"num_predict": value}},
        )
        if value != 0 and value != -1  # Ollama: 0 is its default, -1 means "no limit"
        else _post(url, "/api/generate", {"model": "", "prompt": "x", "options": "bad"})
    )


# -- 29: several choices --------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 1000, 0, -1])
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
def test_more_than_one_choice_is_400_never_silently_one(url: str, route: str, n: int) -> None:
    body = {"messages": ASK, "prompt": "x", "n": n, "max_tokens": 2}
    error = _assert_openai_400(_post(url, route, body))
    assert error["param"] == "n"
    assert "n=1" in error["message"]


# -- 30: out-of-range numbers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("top_logprobs", 21),
        ("top_logprobs", -1),
        ("top_logprobs", 10**9),
        ("logit_bias", {"-1": 5}),
        ("logit_bias", {"99999999": 5}),
        ("logit_bias", {"not-a-token": 5}),
        ("logit_bias", {"1": 1000}),
        ("temperature", -0.5),
        ("top_p", 0),
        ("top_k", -3),
        ("seed", "seven"),
        ("presence_penalty", 9),
    ],
)
def test_out_of_range_numbers_are_400_naming_the_field(
    served: tuple[AppServices, TokenCounter], url: str, field: str, value: Any
) -> None:
    body = {"messages": ASK, "max_tokens": 2, field: value}
    error = _assert_openai_400(_post(url, "/v1/chat/completions", body))
    assert error["param"] is not None
    assert error["param"].startswith(field)
    assert served[1].results == []


def test_logit_bias_ids_are_checked_against_the_vocabulary(url: str) -> None:
    info = httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]
    n_vocab = info["meta"]["n_vocab"]
    inside = _post(
        url,
        "/v1/chat/completions",
        {"messages": ASK, "max_tokens": 2, "logit_bias": {str(n_vocab - 1): -100}},
    )
    assert inside.status_code == 200
    error = _assert_openai_400(
        _post(
            url,
            "/v1/chat/completions",
            {"messages": ASK, "max_tokens": 2, "logit_bias": {str(n_vocab): -100}},
        )
    )
    assert error["param"] == "logit_bias"
    assert str(n_vocab) in error["message"]


@pytest.mark.parametrize("prompt", [[10**9], [[1, 2, 10**9]], [-1]])
def test_token_id_prompts_are_400(url: str, prompt: Any) -> None:
    _assert_openai_400(_post(url, "/v1/completions", {"prompt": prompt, "max_tokens": 2}))


# -- 31: response formats that cannot be enforced ---------------------------------------------


@pytest.mark.parametrize(
    "fmt",
    [
        123,
        "xml",
        ["json"],
        {"type": 123},
        {"type": "string", "pattern": "^(a$"},
        {"type": "string", "pattern": "^a{99999}$"},
        {"$ref": "https://evil.example/schema.json"},
    ],
)
def test_an_ollama_format_that_cannot_be_enforced_is_400_never_ignored(
    served: tuple[AppServices, TokenCounter], url: str, fmt: Any
) -> None:
    for route, extra in (("/api/chat", {"messages": ASK}), ("/api/generate", {"prompt": "x"})):
        body = {"model": "", "format": fmt, "stream": False, **extra}
        _assert_ollama_400(_post(url, route, body))
    assert served[1].results == []


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 123}}},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": []}},
        {"type": "json_schema", "json_schema": "x"},
        {"type": "json_object", "schema": {"type": "string", "pattern": "^[a-$"}},
        {"type": "grammar"},
        {"type": None, "json_schema": {}},
    ],
)
def test_an_openai_response_format_that_cannot_be_enforced_is_400(
    served: tuple[AppServices, TokenCounter], url: str, response_format: Any
) -> None:
    body = {"messages": ASK, "response_format": response_format, "max_tokens": 2}
    response = _post(url, "/v1/chat/completions", body)
    if response_format.get("type") is None:
        assert response.status_code == 200  # no type: plain text, as OpenAI treats it
        return
    error = _assert_openai_400(response)
    assert error["param"].startswith("response_format")
    assert len(served[1].results) == 0


# -- the Anthropic Messages dialect: the same bad inputs, Anthropic-shaped answers -------------

ANTHROPIC_ROUTES = ["/v1/messages", "/v1/messages/count_tokens"]
# What shapes the reply, not the prompt: only /v1/messages reads them.
REPLY_FIELDS = {"stop_sequences", "stream", "top_k", "top_p"}
WRONG_MESSAGES_SHAPES: list[dict[str, Any]] = [
    {"max_tokens": 2, "messages": "x"},
    {"max_tokens": 2, "messages": [{}]},
    {"max_tokens": 2, "messages": [None]},
    {"max_tokens": 2, "messages": [{"role": "tool", "content": "x"}]},
    {"max_tokens": 2, "messages": [{"role": "user", "content": 123}]},
    {"max_tokens": 2, "messages": [{"role": "user", "content": [None]}]},
    {"max_tokens": 2, "messages": [{"role": "user", "content": [{"type": 5}]}]},
    {"max_tokens": 2, "messages": [{"role": "user", "content": [{"type": "text", "text": {}}]}]},
    {"max_tokens": 2, "messages": [{"role": "user", "content": [{"type": "tool_use"}]}]},
    {"max_tokens": 2, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
    {
        "max_tokens": 2,
        "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": 7}]}
        ],
    },
    {
        "max_tokens": 2,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "f"}]},
            {"role": "user", "content": [{"type": "document", "source": {}}]},
        ],
    },
    {
        "max_tokens": 2,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": 1, "name": "f"}]},
            *ASK,
        ],
    },
    {
        "max_tokens": 2,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "input": "x"}]},
            *ASK,
        ],
    },
    {"max_tokens": 2, "messages": ASK, "system": 5},
    {"max_tokens": 2, "messages": ASK, "system": [{"type": "image"}]},
    {"max_tokens": 2, "messages": ASK, "tools": "all of them"},
    {"max_tokens": 2, "messages": ASK, "tools": [{"input_schema": {}}]},
    {"max_tokens": 2, "messages": ASK, "tools": [{"name": "f", "input_schema": "x"}]},
    {"max_tokens": 2, "messages": ASK, "tool_choice": "auto"},
    {"max_tokens": 2, "messages": ASK, "tool_choice": {"type": "required"}},
    {
        "max_tokens": 2,
        "messages": ASK,
        "tools": [{"name": "f"}],
        "tool_choice": {"type": "tool", "name": "g"},
    },
    {"max_tokens": 2, "messages": ASK, "stop_sequences": [1, 2]},
    {"max_tokens": 2, "messages": ASK, "stream": "yes please"},
    {"max_tokens": 2, "messages": ASK, "top_k": -1},
    {"max_tokens": 2, "messages": ASK, "top_p": 0},
]


def _assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == kind
    assert body["error"]["message"]
    assert "Traceback" not in body["error"]["message"]


@pytest.mark.parametrize("payload", NOT_OBJECTS)
@pytest.mark.parametrize("route", ANTHROPIC_ROUTES)
def test_bodies_that_are_not_json_objects_are_anthropic_400s(
    url: str, route: str, payload: bytes
) -> None:
    _assert_anthropic_error(_post(url, route, payload), 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("route", "body"),
    [
        (route, body)
        for body in WRONG_MESSAGES_SHAPES
        for route in ANTHROPIC_ROUTES
        # count_tokens takes only what decides the prompt and ignores the rest.
        if route == "/v1/messages" or not set(body) & REPLY_FIELDS
    ],
)
def test_wrong_messages_shapes_are_anthropic_400s(
    served: tuple[AppServices, TokenCounter], url: str, route: str, body: dict[str, Any]
) -> None:
    response = _post(url, route, {"model": "tiny-chatml", **body})
    _assert_anthropic_error(response, 400, "invalid_request_error")
    assert served[1].results == []


@pytest.mark.parametrize("levels", [60, 2000])
def test_deeply_nested_anthropic_tools_and_tool_uses_are_400s_never_500s(
    url: str, levels: int
) -> None:
    deep = _deep_schema(levels)
    head = '{"model":"","max_tokens":2,"messages":['
    ask = '{"role":"user","content":"Hi"}'
    use = '{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"f","input":%s}]}'
    bodies = [
        f'{head}{ask}],"tools":[{{"name":"f","input_schema":{deep}}}]}}',
        f'{head}{ask}],"tools":[{{"name":"f","input_schema":{deep}}}],'
        '"tool_choice":{"type":"any"}}',
        f"{head}{use % deep},{ask}]}}",
    ]
    for body in bodies:
        for route in ANTHROPIC_ROUTES:
            _assert_anthropic_error(_post(url, route, body.encode()), 400, "invalid_request_error")
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("route", ANTHROPIC_ROUTES)
def test_an_unknown_model_is_an_anthropic_404_naming_the_served_model(
    served: tuple[AppServices, TokenCounter], url: str, route: str
) -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 2, "messages": ASK}
    response = _post(url, route, body)
    _assert_anthropic_error(response, 404, "not_found_error")
    assert "tiny-chatml" in response.json()["error"]["message"]
    assert served[1].results == []  # no silent fallback to the loaded model


def test_anthropic_prompts_longer_than_the_context_are_400s_ten_times_over(url: str) -> None:
    long_chat = [{"role": "user", "content": "Hello world " * 200}]
    for attempt in range(10):
        body = {"model": "", "max_tokens": 2, "messages": long_chat, "stream": attempt % 2 == 0}
        response = _post(url, "/v1/messages", body)
        # Before any SSE byte: a JSON answer with the status, not an event stream.
        assert response.headers["content-type"] == "application/json"
        _assert_anthropic_error(response, 400, "invalid_request_error")
        assert response.json()["error"]["message"].startswith("prompt is too long: ")
        assert f"> {N_CTX} maximum" in response.json()["error"]["message"]
    assert httpx.get(f"{url}/health", timeout=10).json()["status"] == "ok"
    small = {"model": "", "max_tokens": 2, "messages": ASK}
    assert _post(url, "/v1/messages", small).status_code == 200


def test_an_anthropic_max_tokens_beyond_the_context_is_clamped(url: str) -> None:
    body = {"model": "", "max_tokens": 10**9, "messages": ASK, "temperature": 1.0}
    for stream in (False, True):
        response = _post(url, "/v1/messages", {**body, "stream": stream})
        assert response.status_code == 200
        if stream:
            frames = [f for f in response.text.split("\n\n") if f]
            assert frames[-1].startswith("event: message_stop")
            usage = json.loads(frames[-2].split("data: ", 1)[1])["usage"]
        else:
            usage = response.json()["usage"]
        prompt = usage["input_tokens"] + usage["cache_read_input_tokens"]
        assert prompt + usage["output_tokens"] <= N_CTX


@pytest.mark.parametrize("value", [0, -1, "abc", 1.5, [], None])
def test_anthropic_max_tokens_that_is_not_a_positive_count_is_400(url: str, value: Any) -> None:
    body = {"model": "", "max_tokens": value, "messages": ASK}
    _assert_anthropic_error(_post(url, "/v1/messages", body), 400, "invalid_request_error")


# -- the Responses API: the same guarantees, in its own shapes ---------------------------------

WRONG_RESPONSES_SHAPES: list[tuple[dict[str, Any], str]] = [
    ({}, "input"),
    ({"input": []}, "input"),
    ({"input": 5}, "input"),
    ({"input": [None]}, "input"),
    ({"input": [{}]}, "input"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input"),
    ({"input": [{"role": "user", "content": 123}]}, "input"),
    (
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
        "input",
    ),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": {"a": 1}}]}]}, "input"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "input"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "input"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input"),
    ({"input": "Hi", "tools": [{"type": "custom", "name": "apply_patch"}]}, "tools"),
    ({"input": "Hi", "tools": [{"type": "local_shell"}]}, "tools"),
    ({"input": "Hi", "tools": [{"type": "function"}]}, "tools"),
    ({"input": "Hi", "tools": "all"}, "tools"),
    (
        {"input": "Hi", "tools": [{"type": "function", "name": "f"}], "tool_choice": 5},
        "tool_choice",
    ),
    (
        {
            "input": "Hi",
            "tools": [{"type": "function", "name": "f"}],
            "tool_choice": {"type": "file_search"},
        },
        "tool_choice",
    ),
    ({"input": "Hi", "text": {"format": {"type": "xml"}}}, "text.format"),
    ({"input": "Hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format"),
    (
        {"input": "Hi", "text": {"format": {"type": "json_schema", "schema": {"type": 123}}}},
        "text.format",
    ),
    (
        {
            "input": "Hi",
            "text": {
                "format": {"type": "json_schema", "schema": {"$ref": "https://evil.example/s"}}
            },
        },
        "text.format",
    ),
    ({"input": "Hi", "text": "json"}, "text"),
    ({"input": "Hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"input": "Hi", "temperature": -1}, "temperature"),
    ({"input": "Hi", "store": "yes"}, "store"),
    ({"input": "Hi", "store": True}, "store"),
    ({"input": "Hi", "metadata": {"a": {"deep": 1}}}, "metadata"),
    ({"input": "Hi", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ({"input": "Hi", "metadata": {"a": "v" * 513}}, "metadata"),
]


@pytest.mark.parametrize(("body", "param"), WRONG_RESPONSES_SHAPES)
def test_wrong_responses_shapes_are_400s_naming_the_field(
    served: tuple[AppServices, TokenCounter], url: str, body: dict[str, Any], param: str
) -> None:
    error = _assert_openai_400(_post(url, "/v1/responses", body))
    assert error["param"] is not None
    assert error["param"].startswith(param)
    assert served[1].results == []


@pytest.mark.parametrize("payload", NOT_OBJECTS)
def test_responses_bodies_that_are_not_json_objects_are_400s(url: str, payload: bytes) -> None:
    _assert_openai_400(_post(url, "/v1/responses", payload))


@pytest.mark.parametrize("levels", [60, 2000])
def test_deeply_nested_responses_tools_and_calls_are_400s_never_500s(url: str, levels: int) -> None:
    deep = _deep_schema(levels)
    tools = f'"tools":[{{"type":"function","name":"f","parameters":{deep}}}]'
    call = '{"type":"function_call","call_id":"c1","name":"f","arguments":%s}'
    bodies = [
        f'{{"input":"Hi","max_output_tokens":2,{tools}}}',
        f'{{"input":"Hi","max_output_tokens":2,{tools},"tool_choice":"required"}}',
        f'{{"input":"Hi","max_output_tokens":2,"text":{{"format":{{"type":"json_schema","name":"x","schema":{deep}}}}}}}',
        # Arguments are JSON text: too deep to parse, they stay text; never a 500.
        '{"input":[' + call % json.dumps(deep) + '],"max_output_tokens":2}',
    ]
    for body in bodies:
        response = _post(url, "/v1/responses", body.encode())
        assert response.status_code in (200, 400), response.text
        if levels > 100:
            assert response.status_code == 400 or body.startswith('{"input":['), response.text
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200


def test_a_responses_input_longer_than_the_context_is_400_whole_and_streamed(url: str) -> None:
    for stream in (False, True):
        body = {"input": "Hello world " * 200, "stream": stream}
        response = _post(url, "/v1/responses", body)
        assert response.headers["content-type"] == "application/json"
        error = _assert_openai_400(response)
        assert error["code"] == "context_length_exceeded"
        assert error["n_ctx"] == N_CTX
    assert _post(url, "/v1/responses", {"input": "Hi", "max_output_tokens": 2}).status_code == 200


def test_a_huge_max_output_tokens_is_clamped_at_the_context_end(url: str) -> None:
    body = {"input": "Hi", "max_output_tokens": 10**9, "temperature": 1.0}
    reply = _post(url, "/v1/responses", body).json()
    usage = reply["usage"]
    assert usage["input_tokens"] + usage["output_tokens"] <= N_CTX
    assert reply["status"] in ("completed", "incomplete")
