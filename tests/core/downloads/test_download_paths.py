"""Paths that break downloads elsewhere: a non-ASCII user name, a path past 260 characters, no
right to make symlinks (Windows without developer mode), and huggingface_hub's xet switch.

Linux cannot take the symlink right away from a process, so that case makes ``symlink_to`` fail
as Windows does (OSError); the rest run for real.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from app.core.catalog.hub import HubClient
from app.core.downloads.manager import DownloadManager
from app.core.engine.engine import Engine
from app.core.load_options import LoadOptions
from tests.core.downloads.conftest import request_for
from tests.fixtures.hub_server import HubServer, ServedFile, ServedRepo
from tests.fixtures.tiny_llama import write_tiny_llama

REPO_ID = "acme/Tiny-Llama-GGUF"


@pytest.fixture
def loadable(hub_server: HubServer, tmp_path: Path) -> bytes:
    data = write_tiny_llama(tmp_path / "tiny-Q8_0.gguf").read_bytes()
    hub_server.add_repo(ServedRepo(REPO_ID, [ServedFile("tiny-Q8_0.gguf", data)]))
    return data


def fetch(models_dir: Path, hub: HubClient) -> Path:
    manager = DownloadManager(models_dir, hub)
    try:
        item = manager.submit(request_for(hub, REPO_ID, "Q8_0"))
        return item.future.result(timeout=60).paths[0]
    finally:
        manager.close()


def loads(path: Path) -> bool:
    """llama.cpp opens the file through the snapshot path and reports the model."""
    engine = Engine()
    try:
        info = engine.load(LoadOptions(model_path=path, n_ctx=128)).result()
        return info.n_ctx > 0 and engine.model is not None
    finally:
        engine.close()


@pytest.mark.usefixtures("loadable")
def test_a_non_ascii_user_name_and_a_path_past_260_characters_download_and_load(
    tmp_path: Path, hub: HubClient
) -> None:
    home = tmp_path / "Zoë Jäger-Ødegård ホーム"
    models_dir = home / ("deep-folder-" + "x" * 40) / ("models-" + "y" * 60) / ("z" * 90)
    path = fetch(models_dir, hub)
    assert len(str(path)) > 260
    assert loads(path)


def test_without_symlink_rights_the_snapshot_is_a_hard_link(
    tmp_path: Path, hub: HubClient, loadable: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_symlink_rights(self: Path, target: object, target_is_directory: bool = False) -> None:
        raise OSError(1314, "A required privilege is not held by the client")  # Windows' error

    monkeypatch.setattr(Path, "symlink_to", no_symlink_rights)
    path = fetch(tmp_path / "models", hub)
    assert not path.is_symlink()
    assert os.stat(path).st_nlink == 2  # the blob and the snapshot entry share the bytes
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(loadable).digest()
    assert loads(path)


@pytest.mark.parametrize("xet", ["0", "1"])
def test_xet_on_or_off_gives_the_same_verified_bytes(
    tmp_path: Path,
    hub: HubClient,
    loadable: bytes,
    monkeypatch: pytest.MonkeyPatch,
    xet: str,
) -> None:
    """Homefire fetches with its own verified HTTP transfer, never hf_xet: the switch changes
    nothing, and a xet hang cannot reach a download."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", xet)
    path = fetch(tmp_path / "models", hub)
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(loadable).digest()
