"""Moving one file's bytes: ``.part`` file, HTTP Range resume, stall detection, sha256, rename.

Why not ``hf_hub_download``: it cannot be cancelled or paused from another thread, reports
progress only through tqdm, verifies size but not sha256, and since huggingface_hub 1.18 deletes
its temp file on any failure, so a restart begins at zero. Homefire asks huggingface_hub for the
metadata (commit, sha256, size) and moves the bytes itself with httpx.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from app.core.catalog.hub import gated_error
from app.core.errors import (
    Cancelled,
    ChecksumMismatch,
    DiskFull,
    DownloadError,
    InvalidModelFile,
    RepoNotFound,
    SizeMismatch,
)

CHUNK = 1 << 20
GGUF_MAGIC = b"GGUF"
_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


class TransferControl:
    """Cancel and pause for one download, set from any thread, checked between chunks."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._pause = threading.Event()
        self._wake = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()
        self._wake.set()

    def pause(self) -> None:
        self._pause.set()
        self._wake.set()

    def clear_pause(self) -> None:
        self._pause.clear()
        self._wake.clear()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return self._pause.is_set()

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("download cancelled")
        if self._pause.is_set():
            raise Paused()

    def sleep(self, seconds: float) -> None:
        """Back-off that a cancel or pause cuts short."""
        self._wake.wait(seconds)
        self.check()


class Paused(Exception):
    """The user paused the download; the ``.part`` file stays for a later resume."""


class RetryableError(Exception):
    """A dropped connection, stall, 429 or 5xx: worth another attempt after a back-off."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class FileJob:
    """One file to fetch into ``blob`` through ``part``, verified against ``sha256``."""

    url: str
    headers: Mapping[str, str]
    part: Path
    blob: Path
    size: int
    sha256: str
    check_gguf_magic: bool
    label: str  # the file name shown in messages


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # consecutive attempts without progress before giving up
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * 2 ** max(0, failures - 1))


ProgressCallback = Callable[[int], None]  # called with bytes added (negative when restarting)
StatusCallback = Callable[[str], None]


class PartFile:
    """The ``.part`` file and the sha256 of the bytes in it, kept current as chunks arrive.

    Hashing as bytes arrive saves reading the whole file again at the end; after a restart the
    existing prefix is hashed once from disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._digest = hashlib.sha256()
        self._offset = 0

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def sync(self, control: TransferControl) -> int:
        """Make the running hash cover exactly the bytes on disk; returns their count."""
        on_disk = self.size
        if on_disk != self._offset:
            self._digest = hashlib.sha256()
            self._offset = 0
            with self.path.open("rb") as handle:
                while block := handle.read(CHUNK * 8):
                    self._digest.update(block)
                    self._offset += len(block)
                    if control.cancelled:
                        raise Cancelled("download cancelled")
        return self._offset

    def discard(self) -> None:
        _discard(self.path)
        self._digest = hashlib.sha256()
        self._offset = 0

    def append(self, out: BinaryIO, chunk: bytes) -> None:
        out.write(chunk)
        self._digest.update(chunk)
        self._offset += len(chunk)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def fetch_verified(
    client: httpx.Client,
    job: FileJob,
    control: TransferControl,
    on_bytes: ProgressCallback,
    on_status: StatusCallback,
    retry: RetryPolicy,
) -> Path:
    """Fetch, verify and move a file into place; a hash mismatch gets one fresh fetch."""
    part = PartFile(job.part)
    for attempt in (1, 2):
        _fetch_with_retries(client, job, part, control, on_bytes, on_status, retry)
        on_status("verifying")
        digest = part.hexdigest()
        if digest == job.sha256:
            break
        part.discard()
        on_bytes(-job.size)
        if attempt == 2:
            raise ChecksumMismatch(
                f"{job.label} arrived corrupted twice (sha256 {digest[:12]}… instead of "
                f"{job.sha256[:12]}…); the bad bytes were deleted, nothing was kept"
            )
        on_status("corrupted; fetching again")
    if job.check_gguf_magic:
        _require_gguf(job.part, job.label)
    _fsync(job.part)
    os.replace(job.part, job.blob)
    _fsync_dir(job.blob.parent)
    return job.blob


def _fetch_with_retries(
    client: httpx.Client,
    job: FileJob,
    part: PartFile,
    control: TransferControl,
    on_bytes: ProgressCallback,
    on_status: StatusCallback,
    retry: RetryPolicy,
) -> None:
    failures = 0
    while True:
        control.check()
        before = part.size
        try:
            _fetch_once(client, job, part, control, on_bytes)
            return
        except RetryableError as exc:
            failures = 1 if part.size > before else failures + 1
            if failures > retry.attempts:
                raise DownloadError(
                    f"{job.label}: gave up after {retry.attempts} attempts without progress "
                    f"({exc.reason}); run the same command again to continue"
                ) from exc
            wait = exc.retry_after_s if exc.retry_after_s is not None else retry.delay(failures)
            wait = min(wait, retry.max_delay_s)
            on_status(f"{exc.reason}; retrying in {wait:.0f} s")
            control.sleep(wait)
            on_status("downloading")


def _fetch_once(
    client: httpx.Client,
    job: FileJob,
    part: PartFile,
    control: TransferControl,
    on_bytes: ProgressCallback,
) -> None:
    """One HTTP request, appending to the part file from where it ends."""
    job.part.parent.mkdir(parents=True, exist_ok=True)
    have = part.sync(control)
    if have > job.size:  # a part longer than the file cannot be ours to continue
        part.discard()
        on_bytes(-have)
        have = 0
    if have == job.size:
        return
    headers = dict(job.headers)
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with client.stream("GET", job.url, headers=headers) as response:
            start = _start_offset(response, have, job)
            if start != have:
                part.discard()
                on_bytes(-have)
            if response.status_code == 416:
                raise RetryableError("the partial file did not match the remote file")
            _append_body(response, job, part, control, on_bytes)
    except httpx.TimeoutException as exc:
        raise RetryableError("stalled: no data arrived in time") from exc
    except (httpx.TransportError, httpx.DecodingError) as exc:
        raise RetryableError(f"connection lost ({type(exc).__name__})") from exc


def _start_offset(response: httpx.Response, have: int, job: FileJob) -> int:
    """Where this response's body starts in the file, or a typed error for a refusal."""
    status = response.status_code
    if status == 206:
        content_range = response.headers.get("Content-Range", "")
        first = content_range.removeprefix("bytes ").split("-", 1)[0]
        if not first.isdigit() or int(first) != have:
            raise RetryableError(f"the server resumed at the wrong offset ({content_range!r})")
        return have
    if status in (200, 416):
        return 0  # Range ignored, or the part no longer fits: start over, never append twice
    if status in (401, 403):
        raise gated_error(job.label, "the model's page", "Authorization" in job.headers)
    if status == 404:
        raise RepoNotFound(f"{job.label} is no longer on the Hub")
    if status == 429 or status >= 500:
        retry_after = response.headers.get("Retry-After", "")
        raise RetryableError(
            f"the Hub answered {status}", float(retry_after) if retry_after.isdigit() else None
        )
    raise DownloadError(f"{job.label}: the Hub answered {status}")


def _append_body(
    response: httpx.Response,
    job: FileJob,
    part: PartFile,
    control: TransferControl,
    on_bytes: ProgressCallback,
) -> None:
    offset = part.size
    try:
        with job.part.open("ab") as out:
            for chunk in response.iter_raw():  # as the network delivers: a drop loses nothing
                control.check()
                if job.check_gguf_magic and offset == 0 and not _looks_like_gguf(chunk):
                    raise InvalidModelFile(f"{job.label} is not a GGUF file (bad magic bytes)")
                if offset + len(chunk) > job.size:
                    raise SizeMismatch(
                        f"{job.label}: the server sent more than the {job.size} bytes the Hub "
                        "published; the download was discarded"
                    )
                part.append(out, chunk)
                offset += len(chunk)
                on_bytes(len(chunk))
    except OSError as exc:
        if exc.errno in _DISK_ERRNOS:
            raise DiskFull(
                f"the disk filled up while downloading {job.label} ({exc.strerror}); the "
                f"partial file is kept at {job.part}: free some space and run the same command "
                "to continue"
            ) from exc
        raise DownloadError(f"cannot write {job.part}: {exc.strerror}") from exc
    except (InvalidModelFile, SizeMismatch):
        part.discard()
        raise
    if offset < job.size:
        raise RetryableError(f"the connection ended at {offset} of {job.size} bytes")


def _looks_like_gguf(chunk: bytes) -> bool:
    return chunk[: len(GGUF_MAGIC)] == GGUF_MAGIC[: len(chunk)]


def _require_gguf(path: Path, label: str) -> None:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        _discard(path)
        raise InvalidModelFile(f"{label} is not a GGUF file (bad magic bytes); nothing was kept")


def _discard(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
