"""The Ollama dialect on the same port, driven by the real ``ollama`` Python client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.server.conftest import WEATHER_TOOL, ServerFactory, base_url


@pytest.fixture
def url(serve: ServerFactory, tiny_coder_model: Path) -> str:
    return base_url(serve(tiny_coder_model, n_ctx=2048))


@pytest.fixture
def client(url: str) -> ollama.Client:
    return ollama.Client(host=url)


def test_root_and_version_look_like_ollama(url: str) -> None:
    root = httpx.get(f"{url}/")
    assert root.status_code == 200
    assert root.text == "Ollama is running"
    assert httpx.head(f"{url}/").status_code == 200
    version = httpx.get(f"{url}/api/version").json()["version"]
    # Copilot Chat requires a numeric version of at least 0.6.4.
    assert tuple(int(part) for part in version.split(".")) >= (0, 6, 4)


def test_tags_list_the_model_by_name_and_model(client: ollama.Client, url: str) -> None:
    # The loaded model first; with load on request on, the library's models follow.
    model = client.list().models[0]
    assert model.model == "tiny-coder"
    listed = httpx.get(f"{url}/api/tags").json()["models"]
    raw = listed[0]
    assert raw["name"] == raw["model"] == "tiny-coder"
    assert all(set(entry["details"]) == set(raw["details"]) for entry in listed)
    # Zed's serde requires every one of these.
    assert set(raw["details"]) >= {
        "format",
        "family",
        "families",
        "parameter_size",
        "quantization_level",
    }
    assert len(raw["digest"]) == 64


def test_show_reports_capabilities_context_and_a_fim_template(client: ollama.Client) -> None:
    shown = client.show("tiny-coder")
    assert shown.capabilities is not None
    assert set(shown.capabilities) >= {"completion", "tools", "insert"}
    info = shown.modelinfo or {}
    assert info["general.architecture"] == "llama"
    assert info["llama.context_length"] == 2048
    assert ".Suffix" in (shown.template or "")
    assert "num_ctx" in (shown.parameters or "")
    assert shown.details is not None
    assert shown.details.family == "llama"


def test_show_accepts_name_as_older_clients_send_it(url: str) -> None:
    by_name = httpx.post(f"{url}/api/show", json={"name": "tiny-coder"})
    assert by_name.status_code == 200
    assert "tools" in by_name.json()["capabilities"]


def test_a_model_without_tools_or_fim_does_not_claim_them(
    serve: ServerFactory, tiny_model: Path
) -> None:
    shown = ollama.Client(host=base_url(serve(tiny_model))).show("tiny-chatml")
    assert shown.capabilities == ["completion"]
    assert ".Suffix" not in (shown.template or "")


def test_ps_lists_the_loaded_model(client: ollama.Client) -> None:
    (running,) = client.ps().models
    assert running.model == "tiny-coder"
    assert running.expires_at is not None
    assert running.size_vram == 0  # loaded on the CPU


def test_streamed_chat_ends_with_counters_in_nanoseconds(client: ollama.Client) -> None:
    parts = list(
        client.chat(
            model="tiny-coder",
            messages=[{"role": "user", "content": "Hello"}],
            stream=True,
            options={"num_predict": 6, "temperature": 0, "seed": 1},
            keep_alive=-1,
        )
    )
    *middle, last = parts
    assert all(not p.done for p in middle)
    assert last.done
    assert last.done_reason in ("length", "stop")
    assert last.eval_count is not None
    assert last.eval_count <= 6
    assert last.prompt_eval_count is not None
    assert last.prompt_eval_count > 0
    for counter in ("total_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(getattr(last, counter), int)
    assert last.load_duration == 0  # loaded before the request
    assert (last.total_duration or 0) >= (last.eval_duration or 0)


def test_whole_chat_equals_the_streamed_one(client: ollama.Client) -> None:
    kwargs: dict[str, Any] = {
        "model": "tiny-coder",
        "messages": [{"role": "user", "content": "Hello"}],
        "options": {"num_predict": 8, "temperature": 0, "seed": 7},
    }
    whole = client.chat(**kwargs)
    streamed = "".join(p.message.content or "" for p in client.chat(stream=True, **kwargs))
    assert whole.message.content == streamed


def test_chat_with_a_schema_format_answers_matching_json(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    reply = client.chat(
        model="tiny-coder",
        messages=[{"role": "user", "content": "Answer in JSON"}],
        format=schema,
        options={"num_predict": 40, "seed": 2},
    )
    assert isinstance(json.loads(reply.message.content or "")["ok"], bool)


def test_generate_with_suffix_uses_fim(client: ollama.Client) -> None:
    reply = client.generate(
        model="tiny-coder",
        prompt="def add(a, b):\n    ",
        suffix="\n    return c",
        options={"num_predict": 4, "temperature": 0.2},
        keep_alive="30m",
    )
    assert reply.done
    assert reply.prompt_eval_count is not None
    assert reply.eval_count is not None
    assert reply.eval_count <= 4


def test_raw_generate_parses_the_clients_fim_tokens(client: ollama.Client) -> None:
    raw = client.generate(
        model="tiny-coder",
        prompt="<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
        raw=True,
        stream=False,
        options={"num_predict": 1},
    )
    as_text = client.generate(
        model="tiny-coder",
        prompt="<|fim_prefix|>a<|fim_suffix|>b<|fim_middle|>",
        options={"num_predict": 1},
    )
    assert raw.prompt_eval_count is not None
    assert as_text.prompt_eval_count is not None
    # Not raw: the prompt is a chat message, so its FIM spelling stays text.
    assert as_text.prompt_eval_count > raw.prompt_eval_count + 10


def test_generate_format_json_answers_an_object(client: ollama.Client) -> None:
    reply = client.generate(
        model="tiny-coder", prompt="JSON", format="json", options={"num_predict": 60, "seed": 3}
    )
    if reply.done_reason == "stop":
        assert isinstance(json.loads(reply.response), dict)
    else:
        assert reply.response.lstrip().startswith("{")


def test_an_empty_generate_is_a_load_request(url: str) -> None:
    reply = httpx.post(f"{url}/api/generate", json={"model": "tiny-coder"}).json()
    assert reply["done"] is True
    assert reply["done_reason"] == "load"


def test_embed_and_legacy_embeddings(client: ollama.Client) -> None:
    embedded = client.embed(model="tiny-coder", input=["Hello world", "the a"])
    assert len(embedded.embeddings) == 2
    legacy = client.embeddings(model="tiny-coder", prompt="Hello world")
    assert list(legacy.embedding) == pytest.approx(list(embedded.embeddings[0]), abs=1e-6)


def test_tool_call_through_chat_comes_back_with_object_arguments(url: str) -> None:
    # A model without a tools template is told about the tools in a system note; the
    # tiny coder's own template lists them. Either way a parsed call has object arguments.
    body = {
        "model": "tiny-coder",
        "messages": [
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
                ],
            },
            {"role": "tool", "content": "5 C", "tool_name": "get_weather"},
        ],
        "tools": [WEATHER_TOOL],
        "stream": False,
        "options": {"num_predict": 4},
    }
    reply = httpx.post(f"{url}/api/chat", json=body, timeout=60).json()
    assert reply["done"] is True
    assert reply["prompt_eval_count"] > 100


def test_unknown_model_is_an_ollama_shaped_404(client: ollama.Client, url: str) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="llama3:8b", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404
    body = httpx.post(f"{url}/api/show", json={"model": "nope"}).json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)


def test_bad_requests_are_ollama_shaped_400s(url: str) -> None:
    for payload in (
        b"{not json",
        b"[]",
        json.dumps({"model": "tiny-coder", "messages": [{"role": "wizard"}]}).encode(),
    ):
        response = httpx.post(
            f"{url}/api/chat", content=payload, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert isinstance(response.json()["error"], str)


def test_models_are_not_pulled_or_deleted_over_the_api(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull("llama3")
    assert caught.value.status_code == 403
    with pytest.raises(ollama.ResponseError):
        client.delete("tiny-coder")
    assert client.list().models


def test_copilot_flow_version_tags_show_then_openai_chat(url: str) -> None:
    # What Copilot Chat's Ollama provider does, in order.
    assert httpx.get(f"{url}/api/version").status_code == 200
    model = httpx.get(f"{url}/api/tags").json()["models"][0]["model"]
    shown = httpx.post(f"{url}/api/show", json={"model": model}).json()
    arch = shown["model_info"]["general.architecture"]
    assert shown["model_info"][f"{arch}.context_length"] == 2048
    reply = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        headers={"Authorization": "Bearer copilot-needs-some-key"},
        timeout=60,
    )
    assert reply.status_code == 200


@pytest.mark.parametrize("image", ["!!not base64!!", "iVBORw0KGgo=", ""])
def test_images_are_refused_with_a_400_and_serving_goes_on(url: str, image: str) -> None:
    # A malformed (or any) image never reaches the engine: this model has no vision projector.
    chat = {"model": "tiny-coder", "stream": False,
            "messages": [{"role": "user", "content": "what is this?", "images": [image]}]}  # fmt: skip
    generate = {
        "model": "tiny-coder",
        "prompt": "what is this?",
        "images": [image],
        "stream": False,
    }
    for route, body in (("/api/chat", chat), ("/api/generate", generate)):
        response = httpx.post(f"{url}{route}", json=body)
        assert response.status_code == 400, route
        assert "images are not supported" in response.text
    assert httpx.get(f"{url}/health").status_code == 200
