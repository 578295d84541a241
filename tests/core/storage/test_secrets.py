"""Secrets go to the OS keyring (here an in-memory keyring backend: this machine has no
Secret Service); without one, saving fails clearly and nothing is written to a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as FailKeyring
from keyring.errors import PasswordDeleteError

from app.cli import run
from app.core.catalog.hub import resolve_token
from app.core.errors import SecretsUnavailable
from app.core.storage.secrets import delete_secret, read_secret, save_secret


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    yield
    keyring.set_keyring(previous)


def test_a_saved_secret_is_read_back_and_deleted(memory_keyring: MemoryKeyring) -> None:
    save_secret("server-api-key", "s3cret")
    assert memory_keyring.items == {("homefire", "server-api-key"): "s3cret"}
    assert read_secret("server-api-key") == "s3cret"
    assert delete_secret("server-api-key")
    assert read_secret("server-api-key") is None
    assert not delete_secret("server-api-key")


def test_without_a_keyring_reading_is_none_and_saving_is_a_clear_error(
    no_keyring: None, homefire_home: Path
) -> None:
    assert read_secret("huggingface-token") is None
    with pytest.raises(SecretsUnavailable, match="no usable OS keyring"):
        save_secret("huggingface-token", "hf_x")
    assert not any(
        "hf_x" in p.read_text(errors="ignore") for p in homefire_home.rglob("*") if p.is_file()
    )


def test_hub_token_order_env_then_saved(
    memory_keyring: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    save_secret("huggingface-token", "hf_from_keyring")
    assert resolve_token({}) == "hf_from_keyring"
    assert resolve_token({"HF_TOKEN": "hf_from_env"}) == "hf_from_env"


def test_token_command_saves_reports_and_clears_without_printing_it(
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("hf_secretvalue\n"))
    assert run(["token", "--set"]) == 0
    assert read_secret("huggingface-token") == "hf_secretvalue"
    assert run(["token"]) == 0
    out = capsys.readouterr().out
    assert "saved by Homefire in the OS keyring" in out
    assert "hf_secretvalue" not in out
    assert run(["token", "--clear"]) == 0
    assert read_secret("huggingface-token") is None


def test_token_command_refuses_something_that_is_not_a_token(
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("password123\n"))
    assert run(["token", "--set"]) == 1
    assert "does not look like a Hugging Face token" in capsys.readouterr().err
    assert memory_keyring.items == {}


@pytest.fixture
def plain_text_keyring(tmp_path: Path) -> Iterator[KeyringBackend]:
    """keyrings.alt's PlaintextKeyring: a real backend that writes secrets to a file as they are."""
    from keyrings.alt.file import PlaintextKeyring

    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_a_plain_text_keyring_is_refused_with_a_clear_message(
    plain_text_keyring: KeyringBackend, tmp_path: Path
) -> None:
    with pytest.raises(SecretsUnavailable, match="plain-text file, so Homefire does not use it"):
        save_secret("server-api-key", "s3cret-never-written")
    store = tmp_path / "keyring_pass.cfg"
    assert not store.exists() or "s3cret" not in store.read_text()
    # A secret something else put there is not read either.
    plain_text_keyring.set_password("homefire", "server-api-key", "planted")
    assert read_secret("server-api-key") is None


def test_a_plain_text_backend_in_a_chain_is_refused(
    plain_text_keyring: KeyringBackend, memory_keyring: MemoryKeyring
) -> None:
    from keyring.backends.chainer import ChainerBackend

    chain = ChainerBackend()
    chain.__dict__["backends"] = [memory_keyring, plain_text_keyring]
    keyring.set_keyring(chain)
    with pytest.raises(SecretsUnavailable, match="PlaintextKeyring"):
        save_secret("huggingface-token", "hf_x")
