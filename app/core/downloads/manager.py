"""The download queue: a few ``download-N`` threads, progress, pause / resume / cancel, retries.

A request is one variant of a repo (one GGUF, or every shard of a split one). Each file is
looked up on the Hub (commit, sha256, size), skipped when a verified copy already exists, else
fetched by :mod:`app.core.downloads.transfer` into the Hugging Face cache layout under the
models folder. Nothing appears under ``snapshots/`` (where the library looks) before its sha256
matched.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from app.core.catalog.hub import FileMetadata, HubClient, HubFile, is_commit_hash
from app.core.downloads.blob_lock import blob_lock, lock_path
from app.core.downloads.cache_layout import RepoCache
from app.core.downloads.connections import Connections
from app.core.downloads.control import Paused, TransferControl
from app.core.downloads.transfer import FileJob, RetryPolicy, fetch_verified
from app.core.errors import (
    AppError,
    Cancelled,
    DiskFull,
    DownloadError,
    HubError,
    HubOffline,
    HubUnavailable,
    RateLimited,
    SizeMismatch,
)
from app.core.sizes import format_size

log = logging.getLogger(__name__)

DISK_MARGIN_BYTES = 256 << 20  # head-room so a finished download does not leave a full disk
_SPEED_WINDOW_S = 5.0


class DownloadState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "downloading"
    RETRYING = "retrying"
    VERIFYING = "verifying"
    PAUSED = "paused"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class DownloadRequest:
    repo_id: str
    files: tuple[HubFile, ...]  # in order; shards of a split model together
    revision: str = "main"

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class DownloadResult:
    repo_id: str
    paths: tuple[Path, ...]  # the files to load, in order (snapshot paths or another tool's)
    reused: str | None  # where an existing copy was found, None when Homefire downloaded it
    bytes_transferred: int


@dataclass(frozen=True)
class DownloadProgress:
    state: DownloadState
    bytes_done: int
    total_bytes: int
    speed_bps: float | None  # measured over the last few seconds; None before any byte
    eta_s: float | None  # estimated from that speed
    message: str
    current_file: str | None

    @property
    def fraction(self) -> float:
        return self.bytes_done / self.total_bytes if self.total_bytes else 1.0


class ExistingCopies(Protocol):
    """Finds verified copies another tool already has, so Homefire never fetches them twice."""

    def find(self, repo_id: str, files: Sequence[HubFile]) -> tuple[str, tuple[Path, ...]] | None:
        """(where, paths in order) when every file is already on disk elsewhere, else None."""
        ...


ProgressListener = Callable[[DownloadProgress], None]


@dataclass
class DownloadItem:
    """One queued request: its control, progress and a Future of the result."""

    item_id: int
    request: DownloadRequest
    control: TransferControl = field(default_factory=TransferControl)
    future: Future[DownloadResult] = field(default_factory=Future)
    listener: ProgressListener | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _progress: DownloadProgress | None = None
    _samples: deque[tuple[float, int]] = field(default_factory=deque)
    _transferred: int = 0

    def progress(self) -> DownloadProgress:
        with self._lock:
            if self._progress is None:
                return DownloadProgress(
                    DownloadState.QUEUED, 0, self.request.total_bytes, None, None, "queued", None
                )
            return self._progress

    def _publish(self, progress: DownloadProgress) -> None:
        with self._lock:
            self._progress = progress
        if self.listener is not None:
            self.listener(progress)


class DownloadManager:
    """A queue served by ``workers`` threads named ``download-1`` … ``download-N``."""

    def __init__(
        self,
        models_dir: Path,
        hub: HubClient,
        *,
        workers: int = 2,
        stall_timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        existing: ExistingCopies | None = None,
        disk_margin_bytes: int = DISK_MARGIN_BYTES,
    ) -> None:
        self._models_dir = models_dir
        self._hub = hub
        self._retry = retry or RetryPolicy()
        self._existing = existing
        self._disk_margin = disk_margin_bytes
        # The Hub redirects to its CDN; urllib3 drops the token when the host changes.
        self._connections = Connections(stall_timeout_s, per_host=workers)
        self._queue: queue.Queue[DownloadItem | None] = queue.Queue()
        self._items: dict[int, DownloadItem] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"download-{n}", daemon=True)
            for n in range(1, workers + 1)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def models_dir(self) -> Path:
        return self._models_dir

    def submit(
        self, request: DownloadRequest, listener: ProgressListener | None = None
    ) -> DownloadItem:
        with self._lock:
            if self._closed:
                raise DownloadError("the download manager is shut down")
            item = DownloadItem(next(self._ids), request, listener=listener)
            self._items[item.item_id] = item
        self._queue.put(item)
        return item

    def items(self) -> list[DownloadItem]:
        with self._lock:
            return list(self._items.values())

    def pause(self, item: DownloadItem) -> None:
        """Stop moving bytes; the ``.part`` files stay, :meth:`resume` continues from them."""
        item.control.pause()

    def resume(self, item: DownloadItem) -> None:
        if item.future.done() or not item.control.paused:
            return
        item.control.clear_pause()
        item._publish(replace(item.progress(), state=DownloadState.QUEUED, message="queued"))
        self._queue.put(item)

    def cancel(self, item: DownloadItem) -> None:
        """Stop and delete what was fetched for this request (finished files stay)."""
        was_paused = item.control.paused
        item.control.cancel()
        if was_paused:
            self._finish_cancelled(item)

    def close(self) -> None:
        """Pause what runs (parts kept for next time), stop the threads and join them."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            items = list(self._items.values())
        for item in items:
            if not item.future.done():
                item.control.pause()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._connections.close()

    # -- worker ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if item.future.done():
                continue
            if item.control.cancelled:
                self._finish_cancelled(item)
                continue
            try:
                result = self._run(item)
            except Paused:
                item._publish(
                    replace(
                        item.progress(),
                        state=DownloadState.PAUSED,
                        message="paused",
                        speed_bps=None,
                        eta_s=None,
                    )
                )
            except Cancelled:
                self._finish_cancelled(item)
            except AppError as exc:
                self._finish_failed(item, exc)
            except Exception as exc:  # a worker must survive any one download
                log.exception("download %s failed unexpectedly", item.request.repo_id)
                self._finish_failed(item, DownloadError(f"download failed: {exc}"))
            else:
                item._publish(
                    replace(
                        item.progress(),
                        state=DownloadState.DONE,
                        message="done",
                        bytes_done=item.request.total_bytes,
                        eta_s=0.0,
                    )
                )
                item.future.set_result(result)

    def _run(self, item: DownloadItem) -> DownloadResult:
        request = item.request
        tracker = _Tracker(item)
        tracker.status(DownloadState.RUNNING, "looking up files")
        if self._existing is not None:
            found = self._existing.find(request.repo_id, request.files)
            if found is not None:
                where, found_paths = found
                return DownloadResult(request.repo_id, found_paths, where, 0)
        cache = RepoCache(self._models_dir, request.repo_id)
        metas = [self._metadata(item, tracker, f) for f in request.files]
        self._check_disk(cache, request, metas)
        commit = metas[0].commit
        paths: list[Path] = []
        for hub_file, meta in zip(request.files, metas, strict=True):
            sha = _expected_sha(hub_file, meta)
            blob = cache.blob(sha)
            lock = lock_path(self._models_dir, cache.folder.name, sha)
            with blob_lock(lock, cache.part(sha), hub_file.path, item.control):
                # Another downloader may have finished it while this one waited for the lock.
                if not blob.exists():
                    tracker.start_file(hub_file.path, cache.part(sha))
                    fetch_verified(
                        self._connections,
                        FileJob(
                            url=self._hub.resolve_url(request.repo_id, hub_file.path, commit),
                            headers={**self._hub.auth_headers(), "Accept-Encoding": "identity"},
                            part=cache.part(sha),
                            blob=blob,
                            size=hub_file.size,
                            sha256=sha,
                            check_gguf_magic=hub_file.path.lower().endswith(".gguf"),
                            label=hub_file.path,
                        ),
                        item.control,
                        tracker.add_bytes,
                        tracker.message,
                        self._retry,
                    )
            tracker.file_done(hub_file.size)
            paths.append(cache.link_snapshot(commit, hub_file.path, sha))
        if not is_commit_hash(request.revision):
            cache.write_ref(request.revision, commit)
        return DownloadResult(request.repo_id, tuple(paths), None, item._transferred)

    def _metadata(self, item: DownloadItem, tracker: _Tracker, hub_file: HubFile) -> FileMetadata:
        """HEAD the file, retrying what may pass (429, 5xx, a dropped connection)."""
        failures = 0
        while True:
            item.control.check()
            try:
                return self._hub.file_metadata(
                    item.request.repo_id, hub_file.path, item.request.revision
                )
            except (RateLimited, HubUnavailable, HubOffline) as exc:
                if isinstance(exc, HubOffline) and self._hub.settings.offline:
                    raise
                failures += 1
                if failures > self._retry.attempts:
                    raise
                wait = self._retry.delay(failures)
                if isinstance(exc, RateLimited) and exc.retry_after_s is not None:
                    wait = min(float(exc.retry_after_s), self._retry.max_delay_s)
                tracker.status(DownloadState.RETRYING, f"{exc.user_message}; retrying")
                item.control.sleep(wait)

    def _check_disk(
        self, cache: RepoCache, request: DownloadRequest, metas: Sequence[FileMetadata]
    ) -> None:
        needed = 0
        for hub_file, meta in zip(request.files, metas, strict=True):
            sha = _expected_sha(hub_file, meta)
            if meta.size is not None and meta.size != hub_file.size:
                raise SizeMismatch(
                    f"the Hub gives {hub_file.path} two sizes ({hub_file.size} in the listing, "
                    f"{meta.size} on download); not downloading it"
                )
            if cache.blob(sha).exists():
                continue
            needed += hub_file.size - _size_or_zero(cache.part(sha))
        if needed <= 0:
            return
        folder = _existing_parent(self._models_dir)
        free = shutil.disk_usage(folder).free
        if free < needed + self._disk_margin:
            raise DiskFull(
                f"needs {format_size(needed)}, {format_size(free)} free on {folder}; free some "
                "space or move the models folder"
            )

    def _finish_failed(self, item: DownloadItem, exc: AppError) -> None:
        """Publish FAILED before the Future fails, so a watcher never sees a live state after."""
        item._publish(
            replace(
                item.progress(),
                state=DownloadState.FAILED,
                message=exc.user_message,
                speed_bps=None,
                eta_s=None,
            )
        )
        item.future.set_exception(exc)

    def _finish_cancelled(self, item: DownloadItem) -> None:
        if item.future.done():
            return
        cache = RepoCache(self._models_dir, item.request.repo_id)
        for hub_file in item.request.files:
            if hub_file.sha256 is not None:
                with contextlib.suppress(FileNotFoundError, HubError):
                    cache.part(hub_file.sha256).unlink()
        item._publish(
            replace(
                item.progress(),
                state=DownloadState.CANCELLED,
                message="cancelled",
                speed_bps=None,
                eta_s=None,
            )
        )
        item.future.set_exception(Cancelled("download cancelled"))


class _Tracker:
    """Turns byte counts into published progress: bytes done, measured speed, estimated ETA."""

    def __init__(self, item: DownloadItem) -> None:
        self._item = item
        self._done_files = 0
        self._current = 0
        self._file: str | None = None
        self._state = DownloadState.RUNNING
        self._message = "downloading"
        self._last_publish = 0.0

    def start_file(self, name: str, part: Path) -> None:
        self._file = name
        self._current = _size_or_zero(part)  # a resumed part counts as done already
        self.status(DownloadState.RUNNING, "downloading")

    def file_done(self, size: int) -> None:
        self._done_files += size
        self._current = 0
        self._publish(force=True)

    def add_bytes(self, delta: int) -> None:
        self._current = max(0, self._current + delta)
        if delta > 0:
            self._item._transferred += delta
        self._publish(force=False)

    def message(self, text: str) -> None:
        if text.startswith("verifying"):
            self.status(DownloadState.VERIFYING, text)
        elif "retrying" in text:
            self.status(DownloadState.RETRYING, text)
        else:
            self.status(DownloadState.RUNNING, text)

    def status(self, state: DownloadState, message: str) -> None:
        self._state, self._message = state, message
        self._publish(force=True)

    def _publish(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._last_publish < 0.1:
            return
        self._last_publish = now
        done = self._done_files + self._current
        samples = self._item._samples
        samples.append((now, self._item._transferred))
        while samples and now - samples[0][0] > _SPEED_WINDOW_S:
            samples.popleft()
        speed = None
        if len(samples) >= 2 and samples[-1][0] > samples[0][0]:
            speed = (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
        total = self._item.request.total_bytes
        eta = (total - done) / speed if speed else None
        self._item._publish(
            DownloadProgress(self._state, done, total, speed, eta, self._message, self._file)
        )


def _expected_sha(hub_file: HubFile, meta: FileMetadata) -> str:
    """The sha256 to verify against: the tree's LFS oid and the HEAD's linked etag must agree."""
    if hub_file.sha256 and meta.sha256 and hub_file.sha256 != meta.sha256:
        raise DownloadError(
            f"the Hub gives {hub_file.path} two different sha256 values; not downloading it"
        )
    sha = hub_file.sha256 or meta.sha256
    if sha is None:
        raise DownloadError(
            f"the Hub published no sha256 for {hub_file.path}, so Homefire cannot verify it"
        )
    return sha


def _size_or_zero(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path
