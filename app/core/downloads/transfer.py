"""Moving one file's bytes: ``.part`` file, HTTP Range resume, stall detection, sha256, rename.

Why not ``hf_hub_download``: it cannot be cancelled or paused from another thread, reports
progress only through tqdm, verifies size but not sha256, and since huggingface_hub 1.18 deletes
its temp file on any failure, so a restart begins at zero. Homefire asks huggingface_hub for the
metadata (commit, sha256, size) and moves the bytes itself: urllib3 reads 1 MiB blocks off the
socket (see :mod:`app.core.downloads.connections` for why not httpx), this thread writes them,
and :mod:`app.core.downloads.part_file` hashes and flushes them on two more threads.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)

from app.core.catalog.hub import gated_error
from app.core.downloads.connections import Connections
from app.core.downloads.control import TransferControl
from app.core.downloads.part_file import PartFile
from app.core.errors import (
    ChecksumMismatch,
    DownloadError,
    InvalidModelFile,
    RepoNotFound,
    SizeMismatch,
)

# Bytes asked of one socket read. Large enough that per-read Python work is noise next to
# copying the bytes (1 GB is ~1000 reads, not ~16000 as with httpx's 64 KiB), small enough
# that progress and a cancel are seen often on a slow link (a read returns what has arrived).
READ_SIZE = 1 << 20
GGUF_MAGIC = b"GGUF"


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


def fetch_verified(
    connections: Connections,
    job: FileJob,
    control: TransferControl,
    on_bytes: ProgressCallback,
    on_status: StatusCallback,
    retry: RetryPolicy,
) -> Path:
    """Fetch, verify and move a file into place; a hash mismatch gets one fresh fetch."""
    part = PartFile(job.part, job.label)
    for attempt in (1, 2):
        _fetch_with_retries(connections, job, part, control, on_bytes, on_status, retry)
        on_status("verifying")
        part.sync(control)  # a no-op unless hashing fell behind the file (then it hashes it)
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
        _require_gguf(part, job.label)
    part.make_durable()
    os.replace(job.part, job.blob)
    _fsync_dir(job.blob.parent)
    return job.blob


def _fetch_with_retries(
    connections: Connections,
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
            _fetch_once(connections, job, part, control, on_bytes)
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
    connections: Connections,
    job: FileJob,
    part: PartFile,
    control: TransferControl,
    on_bytes: ProgressCallback,
) -> None:
    """One HTTP request, appending to the part file from where it ends."""
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
        response = connections.get(job.url, headers)
    except HTTPError as exc:
        raise _network_error(exc) from exc
    complete = False
    try:
        with control.interrupting(lambda: _shutdown(response)):
            start = _start_offset(response, have, job)
            if start != have:
                part.discard()
                on_bytes(-have)
            if response.status == 416:
                raise RetryableError("the partial file did not match the remote file")
            _append_body(response, job, part, control, on_bytes)
        complete = True
    except (InvalidModelFile, SizeMismatch):
        part.discard()
        raise
    except HTTPError as exc:
        control.check()  # a pause or cancel unblocks the read by shutting the socket
        raise _network_error(exc) from exc
    finally:
        _finish(response, complete)


def _start_offset(response: urllib3.BaseHTTPResponse, have: int, job: FileJob) -> int:
    """Where this response's body starts in the file, or a typed error for a refusal.

    The server's own idea of the file's length (Content-Length of a 200, the total in a
    Content-Range) is checked against the size the Hub published before any byte is kept:
    a file shorter than published would otherwise end every attempt "early" until the retries
    ran out, and never say why.
    """
    status = response.status
    if status == 206:
        first, total = _content_range(response.headers.get("Content-Range", ""))
        _require_hub_size(total, job)
        if first != have:
            raise RetryableError(
                f"the server resumed at the wrong offset ({response.headers.get('Content-Range')!r})"
            )
        return have
    if status == 200:
        length = response.headers.get("Content-Length", "")
        _require_hub_size(int(length) if length.isdigit() else None, job)
        return 0  # Range ignored: start over, never append twice
    if status == 416:
        _require_hub_size(_content_range(response.headers.get("Content-Range", ""))[1], job)
        return 0  # the part no longer fits the file: start over
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


def _content_range(header: str) -> tuple[int | None, int | None]:
    """``bytes 10-99/100`` -> (10, 100); ``bytes */100`` -> (None, 100); unknown parts None."""
    spec, _, total = header.removeprefix("bytes ").partition("/")
    first = spec.split("-", 1)[0]
    return (
        int(first) if first.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


def _require_hub_size(server_size: int | None, job: FileJob) -> None:
    if server_size is not None and server_size != job.size:
        raise SizeMismatch(
            f"{job.label}: the server has {server_size} bytes but the Hub published "
            f"{job.size}; the download was discarded"
        )


def _append_body(
    response: urllib3.BaseHTTPResponse,
    job: FileJob,
    part: PartFile,
    control: TransferControl,
    on_bytes: ProgressCallback,
) -> None:
    offset = part.size
    with part.appender() as out:
        # read1: whatever one socket read brings (up to READ_SIZE), so a drop loses nothing
        # already received and a slow link still reports progress and sees a cancel.
        while chunk := response.read1(READ_SIZE):
            control.check()
            if job.check_gguf_magic and offset == 0 and not _looks_like_gguf(chunk):
                raise InvalidModelFile(f"{job.label} is not a GGUF file (bad magic bytes)")
            if offset + len(chunk) > job.size:
                raise SizeMismatch(
                    f"{job.label}: the server sent more than the {job.size} bytes the Hub "
                    "published; the download was discarded"
                )
            out.write(chunk)
            offset += len(chunk)
            on_bytes(len(chunk))
    if offset < job.size:
        raise RetryableError(f"the connection ended at {offset} of {job.size} bytes")


def _network_error(exc: HTTPError) -> RetryableError:
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    if isinstance(reason, ReadTimeoutError):
        return RetryableError("stalled: no data arrived in time")
    if isinstance(reason, ConnectTimeoutError | NewConnectionError):
        return RetryableError("cannot connect to the server")
    return RetryableError(f"connection lost ({type(reason).__name__})")


def _shutdown(response: urllib3.BaseHTTPResponse) -> None:
    """Unblock a read waiting on this response's socket (called from the cancelling thread)."""
    with contextlib.suppress(ValueError, RuntimeError, OSError):
        response.shutdown()


def _finish(response: urllib3.BaseHTTPResponse, complete: bool) -> None:
    """Keep the connection for the next file only when its body was read to the end."""
    if not complete:
        response.close()
    response.release_conn()


def _looks_like_gguf(chunk: bytes) -> bool:
    return chunk[: len(GGUF_MAGIC)] == GGUF_MAGIC[: len(chunk)]


def _require_gguf(part: PartFile, label: str) -> None:
    with part.open_read() as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        part.discard()
        raise InvalidModelFile(f"{label} is not a GGUF file (bad magic bytes); nothing was kept")


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
