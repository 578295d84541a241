"""Which client sent a request, for the request log and the usage ledger."""

from __future__ import annotations

from starlette.requests import Request

# User-Agent fragments of the clients our users point at Homefire, most specific first.
_KNOWN_CLIENTS: tuple[tuple[str, str], ...] = (
    ("continue", "Continue"),
    ("cline", "Cline"),
    ("roo", "Roo Code"),
    ("zed", "Zed"),
    ("aider", "Aider"),
    ("litellm", "LiteLLM"),
    ("jetbrains", "JetBrains"),
    ("intellij", "JetBrains"),
    ("copilot", "Copilot"),
    ("vscode", "VS Code"),
    ("open-webui", "Open WebUI"),
    ("ollama-python", "ollama-python"),
    ("ollama-js", "ollama-js"),
    ("openai/python", "openai-python"),
    ("asyncopenai/python", "openai-python"),
    ("openai/js", "openai-node"),
    ("python-httpx", "httpx"),
    ("curl", "curl"),
)


def client_name(request: Request) -> str:
    return client_name_for_agent(request.headers.get("user-agent", ""))


def client_name_for_agent(agent: str) -> str:
    lowered = agent.lower()
    for fragment, name in _KNOWN_CLIENTS:
        if fragment in lowered:
            return name
    return agent.split("/")[0][:64] if agent else "unknown"
