"""Name the client behind an endpoint request: its API key's name, else its User-Agent family.

Coding tools and SDKs identify themselves in User-Agent, e.g. ``OpenAI/Python 1.40.0``,
``ollama-python/0.4.7 (x86_64 linux) Python/3.11.9``. Tools come before the SDKs they are
built on, so a tool that adds its name to an SDK's agent string is named for the tool.
"""

from __future__ import annotations

import re

UNKNOWN_CLIENT = "unknown"
_MAX_LABEL = 40

# (family, pattern) in priority order; the first match names the client.
_FAMILIES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (family, re.compile(pattern, re.IGNORECASE))
    for family, pattern in (
        ("Claude Code", r"^claude-cli/|\bclaude[- ]code\b"),
        # Codex's agent starts with its originator: codex_cli_rs/, codex_exec/, codex-tui/, ...
        ("Codex CLI", r"\bcodex(?![a-z])"),
        ("Continue", r"\bcontinue\b"),
        ("Cline", r"\bcline\b"),
        ("Roo Code", r"\broo[- ]?code\b"),
        ("Kilo Code", r"\bkilo[- ]?code\b"),
        ("Copilot", r"copilot"),
        ("Zed", r"\bzed\b"),
        ("Aider", r"\baider\b"),
        ("Open WebUI", r"open[- ]?webui"),
        ("JetBrains", r"jetbrains|intellij"),
        ("VS Code", r"vscode"),
        ("LiteLLM", r"litellm"),
        ("LangChain", r"langchain"),
        ("openai-python", r"\b(?:async)?openai/python\b"),
        ("openai-node", r"\bopenai/js\b"),
        ("anthropic-python", r"\b(?:async)?anthropic/python\b"),
        ("anthropic-js", r"\banthropic/js\b"),
        ("ollama-python", r"\bollama-python\b"),
        ("ollama-js", r"\bollama-js\b"),
        ("httpx", r"\bpython-httpx/"),
        ("requests", r"\bpython-requests/"),
        ("aiohttp", r"\baiohttp/"),
        ("curl", r"^curl/"),
        ("wget", r"^wget/"),
        ("Go", r"^go-http-client/"),
        ("browser", r"^mozilla/"),
        ("node", r"^(?:node|undici|node-fetch|axios)\b"),
    )
)

_PRODUCT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ -]*")


def client_from_user_agent(user_agent: str | None) -> str:
    """The client family for a User-Agent; an unrecognised agent is named by its first product."""
    agent = (user_agent or "").strip()
    if not agent:
        return UNKNOWN_CLIENT
    for family, pattern in _FAMILIES:
        if pattern.search(agent):
            return family
    product = _PRODUCT.match(agent.split("/", 1)[0])
    return product.group(0).strip()[:_MAX_LABEL] if product else UNKNOWN_CLIENT
