"""The ready-to-paste client settings name the endpoint, the model and a key every client accepts."""

from __future__ import annotations

import json
import tomllib

import pytest

from app.core.server.client_snippets import PLACEHOLDER_KEY, Endpoint, snippets

LOOPBACK = Endpoint("http://127.0.0.1:8080", "qwen3-4b", None, 8192)


def _json_part(text: str) -> object:
    return json.loads("\n".join(line for line in text.splitlines() if not line.startswith("//")))


def test_every_snippet_points_at_the_endpoint_and_names_the_model() -> None:
    for snippet in snippets(LOOPBACK):
        assert LOOPBACK.base_url in snippet.text, snippet.client
        assert snippet.where
        if snippet.client != "Open WebUI":  # it lists the models from /v1/models itself
            assert LOOPBACK.model in snippet.text, snippet.client


@pytest.mark.parametrize("client", ["Zed", "Copilot", "llama.vscode"])
def test_json_snippets_parse_as_json(client: str) -> None:
    (snippet,) = [s for s in snippets(LOOPBACK) if s.client == client]
    assert isinstance(_json_part(snippet.text), dict)


def test_without_a_key_the_placeholder_is_offered_and_with_one_the_key() -> None:
    aider = {s.client: s for s in snippets(LOOPBACK)}["Aider"]
    assert f"OPENAI_API_KEY={PLACEHOLDER_KEY}" in aider.text
    keyed = Endpoint("http://192.168.1.5:8080", "qwen3-4b", "sekrit", 8192)
    assert "OPENAI_API_KEY=sekrit" in {s.client: s for s in snippets(keyed)}["Aider"].text


def test_claude_code_is_pointed_at_the_endpoint_root_with_the_key_as_a_bearer_token() -> None:
    claude = {s.client: s for s in snippets(LOOPBACK)}["Claude Code"]
    assert "export ANTHROPIC_BASE_URL=http://127.0.0.1:8080\n" in claude.text  # no /v1
    assert f"ANTHROPIC_AUTH_TOKEN={PLACEHOLDER_KEY}" in claude.text
    assert "ANTHROPIC_MODEL=qwen3-4b" in claude.text
    assert "32768" in claude.text  # an 8k context is too small for Claude Code's prompt
    keyed = Endpoint("http://192.168.1.5:8080", "qwen3-4b", "sekrit", 65536)
    keyed_claude = {s.client: s for s in snippets(keyed)}["Claude Code"]
    assert "ANTHROPIC_AUTH_TOKEN=sekrit" in keyed_claude.text
    assert "32768" not in keyed_claude.text


def test_open_webui_in_docker_reaches_the_host_not_its_own_loopback() -> None:
    webui = {s.client: s for s in snippets(LOOPBACK)}["Open WebUI"]
    assert "http://host.docker.internal:8080/v1" in webui.text


def test_the_editor_plugins_call_infill_with_the_key_only_when_there_is_one() -> None:
    by_client = {s.client: s for s in snippets(LOOPBACK)}
    assert "'endpoint_fim': 'http://127.0.0.1:8080/infill'" in by_client["llama.vim"].text
    assert "'api_key': ''" in by_client["llama.vim"].text
    assert _json_part(by_client["llama.vscode"].text) == {
        "llama-vscode.endpoint": "http://127.0.0.1:8080"
    }
    keyed = {s.client: s for s in snippets(Endpoint("http://10.0.0.2:8080", "m", "sekrit", 4096))}
    assert "'api_key': 'sekrit'" in keyed["llama.vim"].text
    assert _json_part(keyed["llama.vscode"].text) == {
        "llama-vscode.endpoint": "http://10.0.0.2:8080",
        "llama-vscode.api_key": "sekrit",
    }


def test_the_codex_snippet_is_toml_selecting_homefire_over_the_responses_api() -> None:
    codex = {s.client: s for s in snippets(LOOPBACK)}["Codex CLI"]
    config = tomllib.loads(codex.text)
    assert config["model"] == LOOPBACK.model
    assert config["model_context_window"] == LOOPBACK.n_ctx
    provider = config["model_providers"][config["model_provider"]]
    assert provider["base_url"] == "http://127.0.0.1:8080/v1"
    assert provider["wire_api"] == "responses"
    assert "env_key" not in provider
    keyed = Endpoint("http://192.168.1.5:8080", "qwen3-4b", "sekrit", 8192)
    text = {s.client: s for s in snippets(keyed)}["Codex CLI"].text
    assert tomllib.loads(text)["model_providers"]["homefire"]["env_key"] == "HOMEFIRE_API_KEY"
    assert "HOMEFIRE_API_KEY=sekrit" in text
