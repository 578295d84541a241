"""Which client sent a request, for the request log and the usage ledger."""

from __future__ import annotations

from starlette.requests import Request

from app.core.usage.clients import client_from_user_agent


def client_name(request: Request) -> str:
    return client_from_user_agent(request.headers.get("user-agent"))
