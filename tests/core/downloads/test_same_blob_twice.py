"""The same file downloaded twice at once (the app and `homefire pull`, two windows): one
correct blob, no interleaved bytes, no deadlock; a lock that never frees is a clear error."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from app.core.catalog.hub import HubClient
from app.core.downloads.blob_lock import blob_lock
from app.core.downloads.control import TransferControl
from app.core.downloads.manager import DownloadManager
from app.core.errors import Cancelled, DownloadError
from tests.core.downloads.conftest import FILE, request_for
from tests.fixtures.hub_server import HubServer, ServedRepo


def test_same_file_downloaded_twice_at_once_gives_one_correct_blob(
    hub_server: HubServer, repo: ServedRepo, hub: HubClient, models_dir: Path, model_bytes: bytes
) -> None:
    hub_server.state.throttle_bps = 1 << 20  # half a second: long enough to overlap
    # Two managers stand for two processes: each has its own threads and connections.
    first, second = DownloadManager(models_dir, hub), DownloadManager(models_dir, hub)
    try:
        items = [m.submit(request_for(hub)) for m in (first, second)]
        paths = [item.future.result(timeout=60).paths[0] for item in items]
    finally:
        first.close()
        second.close()
    assert paths[0] == paths[1]
    assert hashlib.sha256(paths[0].read_bytes()).digest() == hashlib.sha256(model_bytes).digest()
    # The Hub counts a response's bytes after its last write, which can be after the client
    # has read them all: wait for the count (bounded), then check it was fetched once.
    deadline = time.monotonic() + 10
    while hub_server.bytes_sent(FILE) < len(model_bytes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub_server.bytes_sent(FILE) == len(model_bytes)
    assert list(models_dir.rglob("*.part")) == []


def test_a_lock_whose_holder_makes_no_progress_is_a_clear_error(tmp_path: Path) -> None:
    lock_file = tmp_path / ".locks" / "models--a--b" / "x.lock"
    lock_file.parent.mkdir(parents=True)
    part = tmp_path / "x.part"
    part.write_bytes(b"stuck")
    holder = FileLock(lock_file)
    holder.acquire()
    try:
        with (
            pytest.raises(DownloadError, match="no progress for 1 s"),
            blob_lock(lock_file, part, "x.gguf", TransferControl(), holder_stall_s=1),
        ):
            pass
    finally:
        holder.release()


def test_cancel_while_waiting_for_the_lock_stops_at_once(tmp_path: Path) -> None:
    lock_file = tmp_path / "x.lock"
    holder = FileLock(lock_file)
    holder.acquire()
    control = TransferControl()
    threading.Timer(0.3, control.cancel).start()
    try:
        with pytest.raises(Cancelled), blob_lock(lock_file, tmp_path / "x.part", "x", control):
            pass
    finally:
        holder.release()


def test_a_lock_file_left_by_a_crash_does_not_block(tmp_path: Path) -> None:
    lock_file = tmp_path / "x.lock"
    lock_file.write_text("")  # the file stays after its process died; the OS lock did not
    with blob_lock(lock_file, tmp_path / "x.part", "x", TransferControl(), holder_stall_s=1):
        pass
