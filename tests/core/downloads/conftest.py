"""Download tests run against the loopback Hub (tests/fixtures/hub_server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.catalog.hub import HubClient, HubSettings
from app.core.downloads.manager import DownloadManager, DownloadRequest
from app.core.downloads.transfer import RetryPolicy
from tests.fixtures.hub_server import HubServer, ServedFile, ServedRepo, hub_server, tiny_gguf

__all__ = ["hub_server"]

REPO = "acme/Tiny-GGUF"
FILE = "tiny-Q4_K_M.gguf"


@pytest.fixture
def model_bytes() -> bytes:
    return tiny_gguf(payload_bytes=512 << 10, seed=1)


@pytest.fixture
def repo(hub_server: HubServer, model_bytes: bytes) -> ServedRepo:
    return hub_server.add_repo(ServedRepo(REPO, [ServedFile(FILE, model_bytes)], downloads=10))


@pytest.fixture
def models_dir(homefire_home: Path) -> Path:
    return homefire_home / "data" / "models"


@pytest.fixture
def hub(hub_server: HubServer) -> HubClient:
    return HubClient(HubSettings(hub_server.endpoint, offline=False, token=None))


@pytest.fixture
def manager(models_dir: Path, hub: HubClient) -> Iterator[DownloadManager]:
    mgr = DownloadManager(
        models_dir,
        hub,
        workers=2,
        stall_timeout_s=1.0,
        retry=RetryPolicy(attempts=3, base_delay_s=0.05, max_delay_s=0.2),
        disk_margin_bytes=0,
    )
    yield mgr
    mgr.close()


def request_for(hub: HubClient, repo_id: str = REPO, quant: str = "Q4_K_M") -> DownloadRequest:
    variant = next(v for v in hub.variants(repo_id) if v.quant == quant)
    return DownloadRequest(repo_id, variant.files)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()
