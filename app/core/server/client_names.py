"""Which client sent a request, for the request log and the usage ledger."""

from __future__ import annotations

from starlette.requests import Request

from app.core.usage.clients import client_from_user_agent

# llama.cpp's fill-in-the-middle route. Its two editor plugins do not name themselves: llama.vim
# sends curl's User-Agent and llama.vscode axios's, so the route names them.
INFILL_PATH = "/infill"
INFILL_CLIENT = "llama.vscode/llama.vim (infill)"
_GENERIC_AGENTS = frozenset({"unknown", "curl", "node", "wget", "Go", "httpx", "requests"})


def client_name(request: Request) -> str:
    return client_for(request.headers.get("user-agent"), request.url.path)


def client_for(user_agent: str | None, path: str) -> str:
    client = client_from_user_agent(user_agent)
    if path == INFILL_PATH and client in _GENERIC_AGENTS:
        return INFILL_CLIENT
    return client
