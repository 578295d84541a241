"""One function builds the server configuration for the app and for ``homefire serve``."""

from __future__ import annotations

import pytest

from app.core.errors import ConfigError
from app.core.server.app import ServerConfig
from app.core.server.config import API_KEY_ENV, ServerChoices, server_config
from app.core.server.host_check import is_loopback
from app.core.storage.settings import ServerSettings


def keyring_with(key: str | None):  # type: ignore[no-untyped-def]
    return lambda: key


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("", False),
    ],
)
def test_the_loopback_rule_reads_addresses_not_strings(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_key_comes_from_the_choice_then_the_environment_then_the_keyring() -> None:
    settings = ServerSettings()
    env = {API_KEY_ENV: "from-env"}
    given = server_config(settings, ServerChoices(api_key="given"), env, keyring_with("saved"))
    assert given.api_key == "given"
    assert server_config(settings, ServerChoices(), env, keyring_with("saved")).api_key == (
        "from-env"
    )
    assert server_config(settings, ServerChoices(), {}, keyring_with("saved")).api_key == "saved"
    assert server_config(settings, ServerChoices(), {}, keyring_with(None)).api_key is None
    # The Server page's emptied field means "no key", whatever the keyring still holds.
    emptied = server_config(settings, ServerChoices(api_key=""), env, keyring_with("saved"))
    assert emptied.api_key is None


def test_lan_switches_the_address_and_keeps_a_chosen_lan_address() -> None:
    settings = ServerSettings()
    key = ServerChoices(api_key="k")
    assert (
        server_config(settings, ServerChoices(lan=True, api_key="k"), {}, keyring_with(None)).host
        == "0.0.0.0"
    )
    assert (
        server_config(settings, ServerChoices(lan=False), {}, keyring_with(None)).host
        == "127.0.0.1"
    )
    lan_ip = ServerSettings(host="192.168.1.20")
    assert (
        server_config(lan_ip, ServerChoices(lan=True, api_key="k"), {}, keyring_with(None)).host
        == "192.168.1.20"
    )
    assert (
        server_config(lan_ip, ServerChoices(lan=False), {}, keyring_with(None)).host == "127.0.0.1"
    )
    assert server_config(settings, key, {}, keyring_with(None)).host == "127.0.0.1"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "homefire.lan"])
def test_an_address_beyond_loopback_without_a_key_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="needs an API key"):
        server_config(ServerSettings(host=host), ServerChoices(), {}, keyring_with(None))
    with pytest.raises(ConfigError, match="needs an API key"):
        ServerConfig(host=host)
    assert server_config(ServerSettings(host=host), ServerChoices(), {}, keyring_with("k"))


@pytest.mark.parametrize(
    "origin",
    ["*", "null", "http://*", "https://*", "https://*.example.com", "*://x", "example.com"],
)
def test_cors_origins_refuse_wildcards(origin: str) -> None:
    settings = ServerSettings(cors_origins=["http://localhost:3000", origin])
    with pytest.raises(ConfigError, match="CORS origin"):
        server_config(settings, ServerChoices(), {}, keyring_with(None))


def test_exact_origins_and_an_apps_own_scheme_are_accepted() -> None:
    origins = ["http://localhost:3000", "https://app.example", "vscode-webview://*"]
    config = server_config(
        ServerSettings(cors_origins=origins), ServerChoices(), {}, keyring_with(None)
    )
    assert config.cors_origins == tuple(origins)


def test_limits_come_from_the_settings() -> None:
    settings = ServerSettings()
    settings.limits.max_connections = 7
    config = server_config(settings, ServerChoices(), {}, keyring_with(None))
    assert config.limits.max_connections == 7
