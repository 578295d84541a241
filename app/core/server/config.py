"""The one place a server configuration is built, for the app's Server page and ``homefire serve``.

Both start from the saved settings, apply what the user chose for this start (the page's fields,
the command's flags) and take the API key from the same sources in the same order, so the app
and the command cannot disagree about the address, the key or the loopback rule.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.core.server.app import ServerConfig
from app.core.server.host_check import is_loopback
from app.core.storage.secrets import read_secret
from app.core.storage.settings import ServerSettings

API_KEY_ENV = "HOMEFIRE_API_KEY"
LOOPBACK_HOST = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"


def saved_api_key() -> str | None:
    """The key the app saved in the OS keyring (a plain-text keyring is refused, not read)."""
    return read_secret("server-api-key")


@dataclass(frozen=True)
class ServerChoices:
    """What the user chose for this start; None leaves the saved setting (or key source) in force.

    ``api_key=""`` means "no key" on purpose (the Server page's field was emptied), which is not
    the same as not saying (``homefire serve`` without ``--api-key``: the environment, then the
    keyring are asked).
    """

    lan: bool | None = None
    host: str | None = None
    port: int | None = None
    api_key: str | None = None
    cors_origins: tuple[str, ...] | None = None


def server_config(
    settings: ServerSettings,
    choices: ServerChoices = ServerChoices(),
    environ: Mapping[str, str] | None = None,
    keyring_key: Callable[[], str | None] = saved_api_key,
) -> ServerConfig:
    """The configuration to serve with; ``ConfigError`` when it would be unsafe or unusable."""
    host = choices.host or settings.host
    if choices.lan is not None and choices.lan != (not is_loopback(host)):
        host = ALL_INTERFACES if choices.lan else LOOPBACK_HOST
    return ServerConfig(
        host=host,
        port=settings.port if choices.port is None else choices.port,
        api_key=_api_key(choices.api_key, os.environ if environ is None else environ, keyring_key),
        cors_origins=tuple(
            settings.cors_origins if choices.cors_origins is None else choices.cors_origins
        ),
        allowed_hosts=tuple(settings.allowed_hosts),
        max_body_bytes=settings.max_body_bytes,
        limits=settings.limits.model_copy(),
    )


def key_source(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Where a configuration's key came from, in words (never the key itself)."""
    env = os.environ if environ is None else environ
    if given is not None:
        return "given for this start"
    if env.get(API_KEY_ENV, "").strip():
        return API_KEY_ENV
    return "the key the app saved in the OS keyring"


def _api_key(
    given: str | None, environ: Mapping[str, str], keyring_key: Callable[[], str | None]
) -> str | None:
    if given is not None:
        return given.strip() or None
    from_env = environ.get(API_KEY_ENV, "").strip()
    if from_env:
        return from_env
    return keyring_key()
