"""Downloads under injected faults: each ends in a verified file or a clear error, and nothing
half-written is ever listed as a model."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import pytest

from app.core.catalog.hub import HubClient, HubFile
from app.core.downloads.manager import (
    DownloadManager,
    DownloadProgress,
    DownloadRequest,
    DownloadState,
)
from app.core.errors import (
    Cancelled,
    ChecksumMismatch,
    DiskFull,
    DownloadError,
    GatedRepo,
    InvalidModelFile,
    RepoNotFound,
    SizeMismatch,
)
from app.core.library.sources import homefire_downloads
from tests.core.downloads.conftest import FILE, REPO, request_for
from tests.fixtures.hub_server import Fault, HubServer, ServedFile, ServedRepo, tiny_gguf

pytestmark = pytest.mark.usefixtures("repo")


def listed(models_dir: Path) -> list[str]:
    return [m.name for m in homefire_downloads(models_dir).scan()]


def download(manager: DownloadManager, hub: HubClient) -> Path:
    return manager.submit(request_for(hub)).future.result(timeout=60).paths[0]


def assert_verified(path: Path, model_bytes: bytes) -> None:
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(model_bytes).digest()


def test_clean_download_lands_in_hf_cache_layout(
    manager: DownloadManager, hub: HubClient, models_dir: Path, model_bytes: bytes
) -> None:
    path = download(manager, hub)
    assert_verified(path, model_bytes)
    repo_dir = models_dir / "models--acme--Tiny-GGUF"
    assert path.parent.parent == repo_dir / "snapshots"
    assert path.is_symlink()
    assert (repo_dir / "refs" / "main").read_text() == path.parent.name
    assert (repo_dir / "blobs" / hashlib.sha256(model_bytes).hexdigest()).is_file()
    assert listed(models_dir) == [f"{REPO}:Q4_K_M"]


def test_huggingface_hub_finds_the_downloaded_file(
    manager: DownloadManager, hub: HubClient, models_dir: Path
) -> None:
    from huggingface_hub import try_to_load_from_cache

    path = download(manager, hub)
    assert try_to_load_from_cache(REPO, FILE, cache_dir=models_dir) == str(path)


def test_dropped_connection_resumes_with_range(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes
) -> None:
    hub_server.add_fault(FILE, Fault.drop(after_bytes=200_000))
    path = download(manager, hub)
    assert_verified(path, model_bytes)
    ranges = [r.range for r in hub_server.requests() if r.path.startswith("/cdn-lfs/")]
    assert ranges == [None, "bytes=200000-"]
    assert hub_server.bytes_sent(FILE) == len(model_bytes)


def test_stall_is_detected_and_retried(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes
) -> None:
    hub_server.add_fault(FILE, Fault.stall(after_bytes=100_000, seconds=5.0))
    states: list[DownloadState] = []
    item = manager.submit(request_for(hub), listener=lambda p: states.append(p.state))
    assert_verified(item.future.result(timeout=60).paths[0], model_bytes)
    assert DownloadState.RETRYING in states


def test_corrupted_byte_is_caught_and_fetched_again_once(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes
) -> None:
    hub_server.add_fault(FILE, Fault.corrupt(offset=300_000))
    assert_verified(download(manager, hub), model_bytes)
    assert hub_server.bytes_sent(FILE) == 2 * len(model_bytes)


def test_corruption_twice_fails_and_keeps_nothing(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    hub_server.add_fault(FILE, Fault.corrupt(offset=10_000), times=2)
    with pytest.raises(ChecksumMismatch, match="corrupted twice"):
        download(manager, hub)
    blobs = list((models_dir / "models--acme--Tiny-GGUF" / "blobs").iterdir())
    assert blobs == []
    assert listed(models_dir) == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_429_and_5xx_are_retried(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes, status: int
) -> None:
    hub_server.add_fault(FILE, Fault.http_status(status, retry_after=0), times=2)
    assert_verified(download(manager, hub), model_bytes)


def test_persistent_5xx_gives_up_with_a_clear_error(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    hub_server.add_fault(FILE, Fault.http_status(502), times=50)
    with pytest.raises(Exception, match="gave up after 3 attempts"):
        download(manager, hub)
    assert listed(models_dir) == []


def test_server_ignoring_range_restarts_cleanly(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes
) -> None:
    hub_server.add_fault(FILE, Fault.drop(after_bytes=150_000))
    hub_server.add_fault(FILE, Fault.ignore_range())
    assert_verified(download(manager, hub), model_bytes)


def test_gated_download_asks_for_licence_and_token(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    data = tiny_gguf(payload_bytes=1024)
    hub_server.add_repo(
        ServedRepo("meta/Gated-GGUF", [ServedFile("g-Q4_K_M.gguf", data)], gated=True)
    )
    files = (HubFile("g-Q4_K_M.gguf", len(data), hashlib.sha256(data).hexdigest()),)
    with pytest.raises(GatedRepo, match="accept the licence"):
        manager.submit(DownloadRequest("meta/Gated-GGUF", files)).future.result(timeout=30)
    assert listed(models_dir) == []


def test_file_gone_from_the_hub_is_not_found(manager: DownloadManager) -> None:
    files = (HubFile("gone-Q4_K_M.gguf", 10, "a" * 64),)
    with pytest.raises(RepoNotFound, match=r"gone-Q4_K_M\.gguf"):
        manager.submit(DownloadRequest(REPO, files)).future.result(timeout=30)


@pytest.mark.parametrize("lie", [-100, +100], ids=["hub-says-smaller", "hub-says-larger"])
def test_hub_size_that_does_not_match_the_bytes_is_refused(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path, lie: int
) -> None:
    data = tiny_gguf(payload_bytes=64 << 10)
    hub_server.add_repo(
        ServedRepo(
            "acme/Liar-GGUF", [ServedFile("l-Q4_K_M.gguf", data, advertised_size=len(data) + lie)]
        )
    )
    with pytest.raises(SizeMismatch, match=f"server has {len(data)} bytes but the Hub published"):
        manager.submit(request_for(hub, "acme/Liar-GGUF")).future.result(timeout=30)
    assert listed(models_dir) == []
    assert not list((models_dir / "models--acme--Liar-GGUF" / "blobs").glob("*"))


def test_file_that_is_not_a_gguf_is_refused(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    hub_server.add_repo(
        ServedRepo(
            "acme/Fake-GGUF", [ServedFile("f-Q4_K_M.gguf", b"<html>not a model</html>" * 100)]
        )
    )
    with pytest.raises(InvalidModelFile, match="not a GGUF"):
        manager.submit(request_for(hub, "acme/Fake-GGUF")).future.result(timeout=30)
    assert listed(models_dir) == []


def test_not_enough_disk_is_refused_before_any_byte(
    hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    free = shutil.disk_usage(models_dir.parent if models_dir.parent.exists() else "/").free
    manager = DownloadManager(models_dir, hub, disk_margin_bytes=free)
    try:
        with pytest.raises(DiskFull, match=r"needs .* free"):
            manager.submit(request_for(hub)).future.result(timeout=30)
    finally:
        manager.close()
    assert hub_server.bytes_sent(FILE) == 0


def test_pause_keeps_the_part_and_resume_continues(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, model_bytes: bytes
) -> None:
    hub_server.state.throttle_bps = 400_000
    started, paused = threading.Event(), threading.Event()
    paused_at: list[int] = []

    def on_progress(p: DownloadProgress) -> None:
        if p.bytes_done >= 100_000:
            started.set()
        if p.state == DownloadState.PAUSED:
            paused_at.append(p.bytes_done)
            paused.set()

    item = manager.submit(request_for(hub), listener=on_progress)
    assert started.wait(30)
    manager.pause(item)
    assert paused.wait(30)
    hub_server.state.throttle_bps = None
    manager.resume(item)
    assert_verified(item.future.result(timeout=60).paths[0], model_bytes)
    assert 0 < paused_at[0] < len(model_bytes)
    assert hub_server.bytes_sent(FILE) <= len(model_bytes) + (64 << 10)


def test_cancel_deletes_the_partial_file(
    manager: DownloadManager, hub: HubClient, hub_server: HubServer, models_dir: Path
) -> None:
    hub_server.state.throttle_bps = 200_000
    started = threading.Event()
    item = manager.submit(
        request_for(hub), listener=lambda p: started.set() if p.bytes_done > 50_000 else None
    )
    assert started.wait(30)
    manager.cancel(item)
    with pytest.raises(Cancelled):
        item.future.result(timeout=30)
    assert not list((models_dir / "models--acme--Tiny-GGUF" / "blobs").glob("*.part"))
    assert listed(models_dir) == []


def test_worker_threads_are_named_download_n(manager: DownloadManager) -> None:
    names = {t.name for t in threading.enumerate()}
    assert {"download-1", "download-2"} <= names


def test_an_unexpected_error_ends_as_failed_not_as_a_live_item(
    manager: DownloadManager, hub: HubClient, models_dir: Path
) -> None:
    # A file where the cache wants its snapshots folder: linking the verified blob raises an
    # OSError no download step expects.
    repo_dir = models_dir / "models--acme--Tiny-GGUF"
    repo_dir.mkdir(parents=True)
    (repo_dir / "snapshots").write_text("not a folder")
    states: list[DownloadState] = []
    item = manager.submit(request_for(hub), listener=lambda p: states.append(p.state))
    with pytest.raises(DownloadError, match="download failed"):
        item.future.result(timeout=60)
    assert item.progress().state == DownloadState.FAILED
    assert states[-1] == DownloadState.FAILED
    assert "download failed" in item.progress().message.lower()
