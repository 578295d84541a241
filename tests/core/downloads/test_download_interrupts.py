"""Pause and cancel reach a download stuck on a silent server, and the token stays on the Hub."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.core.catalog.hub import HubClient, HubSettings
from app.core.downloads.manager import (
    DownloadItem,
    DownloadManager,
    DownloadProgress,
    DownloadState,
)
from app.core.downloads.transfer import RetryPolicy
from app.core.errors import Cancelled
from tests.core.downloads.conftest import FILE, request_for
from tests.fixtures.hub_server import Fault, HubServer, ServedFile, ServedRepo, tiny_gguf

STALL_TIMEOUT_S = 120.0  # far longer than any wait below: only an interrupt can end the read


@pytest.fixture
def patient_manager(models_dir: Path, hub: HubClient) -> Iterator[DownloadManager]:
    mgr = DownloadManager(
        models_dir,
        hub,
        workers=1,
        stall_timeout_s=STALL_TIMEOUT_S,
        retry=RetryPolicy(attempts=3, base_delay_s=0.05, max_delay_s=0.2),
        disk_margin_bytes=0,
    )
    yield mgr
    mgr.close()


def paused_listener(paused: threading.Event) -> Callable[[DownloadProgress], None]:
    return lambda progress: paused.set() if progress.state == DownloadState.PAUSED else None


def stalled_download(
    manager: DownloadManager,
    hub: HubClient,
    hub_server: HubServer,
    listener: Callable[[DownloadProgress], None] | None = None,
) -> DownloadItem:
    """A download whose server sent 100 kB and now holds the connection silent."""
    hub_server.add_fault(FILE, Fault.stall(after_bytes=100_000, seconds=STALL_TIMEOUT_S))
    item = manager.submit(request_for(hub), listener=listener)
    deadline = time.monotonic() + 30
    while hub_server.bytes_sent(FILE) < 100_000:
        assert time.monotonic() < deadline, "the server never sent the first 100 kB"
        time.sleep(0.01)
    return item


@pytest.mark.usefixtures("repo")
def test_pause_ends_a_read_stuck_on_a_silent_server(
    patient_manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes
) -> None:
    paused = threading.Event()
    item = stalled_download(patient_manager, hub, hub_server, paused_listener(paused))
    patient_manager.pause(item)
    assert paused.wait(30), "the pause waited for the stall timeout"
    patient_manager.resume(item)
    path = item.future.result(timeout=60).paths[0]
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(model_bytes).digest()


@pytest.mark.usefixtures("repo")
def test_cancel_ends_a_read_stuck_on_a_silent_server(
    patient_manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    item = stalled_download(patient_manager, hub, hub_server)
    patient_manager.cancel(item)
    with pytest.raises(Cancelled):
        item.future.result(timeout=30)
    assert not list(models_dir.rglob("*.part"))


def test_token_goes_to_the_hub_but_not_to_the_cdn(hub_server: HubServer, models_dir: Path) -> None:
    data = tiny_gguf(payload_bytes=64 << 10)
    hub_server.add_repo(
        ServedRepo(
            "meta/Gated-GGUF",
            [ServedFile("g-Q4_K_M.gguf", data)],
            gated=True,
            allowed_tokens=("hf_secret",),
        )
    )
    hub = HubClient(HubSettings(hub_server.endpoint, offline=False, token="hf_secret"))
    manager = DownloadManager(models_dir, hub, workers=1, disk_margin_bytes=0)
    try:
        manager.submit(request_for(hub, "meta/Gated-GGUF")).future.result(timeout=60)
    finally:
        manager.close()
    gets = [r for r in hub_server.requests() if r.method == "GET"]
    resolves = [r for r in gets if "/resolve/" in r.path]
    cdn = [r for r in gets if r.path.startswith("/cdn-lfs/")]
    assert resolves, "the download never asked the Hub"
    assert all(r.authorization == "Bearer hf_secret" for r in resolves)
    assert cdn, "the download never reached the CDN"
    assert all(r.authorization is None for r in cdn)
