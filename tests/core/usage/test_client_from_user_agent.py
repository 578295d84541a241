"""Endpoint requests are filed under their API key's name or their User-Agent family."""

from __future__ import annotations

import anthropic
import httpx
import ollama
import openai
import pytest

from app.core.usage.clients import client_from_user_agent


def test_the_real_sdks_are_recognised_by_the_agent_they_send() -> None:
    sync = openai.OpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
    asynchronous = openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:9/v1")
    ollama_client = ollama.Client(host="http://127.0.0.1:9")
    claude_sdk = anthropic.Anthropic(api_key="x", base_url="http://127.0.0.1:9")
    with httpx.Client() as plain:
        agents = {
            sync.user_agent: "openai-python",
            asynchronous.user_agent: "openai-python",
            ollama_client._client.headers["user-agent"]: "ollama-python",
            plain.headers["user-agent"]: "httpx",
            claude_sdk.user_agent: "anthropic-python",
        }
    for agent, family in agents.items():
        assert client_from_user_agent(agent) == family, agent


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        ("OpenAI/JS 4.67.3", "openai-node"),
        ("curl/8.5.0", "curl"),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "browser"),
        # A tool that names itself beside the SDK it is built on is named for the tool.
        ("Continue OpenAI/JS 4.67.3", "Continue"),
        ("cline/3.17.0 OpenAI/JS 4.96.0", "Cline"),
        # Claude Code's own agent string, and the anthropic TypeScript SDK it is built on.
        ("claude-cli/2.0.14 (external, cli)", "Claude Code"),
        ("Anthropic/JS 0.60.0", "anthropic-js"),
        ("MyScript/2.1 (linux)", "MyScript"),
        # Codex's agent is its originator, version, platform and terminal.
        ("codex_cli_rs/0.63.0 (Ubuntu 24.4.0; x86_64) xterm-256color", "Codex CLI"),
        ("codex_exec/0.63.0 (Mac OS 15.1.0; arm64) unknown", "Codex CLI"),
        ("codex-tui/0.149.1 (Mac OS 15.1.0; arm64) iTerm.app/3.5", "Codex CLI"),
        ("codex_vscode/0.1.0 (Windows 11; x86_64) vscode/1.99.0", "Codex CLI"),
        ("Codexify/1.0", "Codexify"),
        ("", "unknown"),
        (None, "unknown"),
        ("///", "unknown"),
    ],
)
def test_agent_families(agent: str | None, family: str) -> None:
    assert client_from_user_agent(agent) == family
