"""The ``.part`` file a download grows, and the sha256 of exactly the bytes written to it.

Appending is a three-thread pipeline so the download thread only receives and writes:

- the download thread writes each chunk, then hands it to a hashing thread through a bounded
  queue (hashlib releases the GIL on large buffers, so hashing overlaps the next socket read);
- a flush thread calls ``fdatasync`` every ``FLUSH_EVERY`` bytes, so the kernel writes the file
  out while it arrives and the ``fsync`` before the final rename has little left to do.

The file is opened without following symbolic links (``O_NOFOLLOW``): a link planted where
the ``.part`` file belongs (by another program, or a hostile archive unpacked into the models
folder) would otherwise make the download append to whatever file it points at.

A chunk is hashed only after it was fully written, so the digest never covers a byte the file
lacks; when a write fails half-way the file holds bytes the digest does not, and :meth:`sync`
hashes the file again from disk before the next attempt appends to it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import threading
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from app.core.downloads.control import TransferControl
from app.core.errors import DiskFull, DownloadError

FLUSH_EVERY = 64 << 20
_HASH_QUEUE_CHUNKS = 16  # at most this many received chunks wait for the hashing thread
_REHASH_BLOCK = 8 << 20
_DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# Windows has no O_NOFOLLOW; creating a symlink there needs rights a planted one rarely has.
_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)


class PartFile:
    """The ``.part`` file and the running sha256 of the bytes in it."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label  # the file name shown in messages
        self._digest = hashlib.sha256()
        self._offset = 0  # bytes the digest covers

    @property
    def size(self) -> int:
        try:
            return self.path.lstat().st_size
        except FileNotFoundError:
            return 0

    def open_read(self) -> BinaryIO:
        """The bytes on disk, never through a symbolic link."""
        return os.fdopen(_open(self, os.O_RDONLY | _BINARY), "rb")

    def sync(self, control: TransferControl) -> int:
        """Make the running hash cover exactly the bytes on disk; returns their count.

        After a restart (or a write that failed half-way) the existing prefix is hashed once
        from disk; a cancel or pause cuts that short.
        """
        on_disk = self.size
        if on_disk != self._offset:
            self._digest = hashlib.sha256()
            self._offset = 0
            with self.open_read() as handle:
                while block := handle.read(_REHASH_BLOCK):
                    self._digest.update(block)
                    self._offset += len(block)
                    control.check()
        return self._offset

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._digest = hashlib.sha256()
        self._offset = 0

    def appender(self) -> PartAppender:
        """Open the file for appending; use as a context manager (closing joins the threads)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return PartAppender(self)
        except OSError as exc:
            raise _write_error(self, exc) from exc

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def make_durable(self) -> None:
        """fsync before the rename, so a crash never leaves a named but empty blob."""
        try:
            with self.open_read() as handle:
                os.fsync(handle.fileno())
        except OSError as exc:
            raise _write_error(self, exc) from exc

    def _hashed(self, digest: hashlib._Hash, offset: int) -> None:
        self._digest, self._offset = digest, offset


class PartAppender:
    """Appends chunks to a :class:`PartFile`: writes here, hashes and flushes on two threads."""

    def __init__(self, part: PartFile) -> None:
        self._part = part
        self._fd = _open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND | _BINARY)
        self._digest = part._digest.copy()
        self._hashed = part._offset
        self._chunks: queue.Queue[bytes | None] = queue.Queue(_HASH_QUEUE_CHUNKS)
        self._hasher = threading.Thread(target=self._hash_chunks, name="download-hash", daemon=True)
        self._flusher = _Flusher(self._fd)
        self._unflushed = 0
        self._closed = False
        self._hasher.start()

    def write(self, chunk: bytes) -> None:
        """Append all of ``chunk``; a full disk raises :class:`DiskFull` with the part kept."""
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            raise _write_error(self._part, exc) from exc
        self._chunks.put(chunk)
        self._unflushed += len(chunk)
        if self._unflushed >= FLUSH_EVERY:
            self._unflushed = 0
            self._flusher.kick()

    def close(self) -> None:
        """Wait until every written chunk is hashed, stop flushing, close the file."""
        if self._closed:
            return
        self._closed = True
        self._chunks.put(None)
        self._hasher.join()
        self._part._hashed(self._digest, self._hashed)
        flush_error = self._flusher.stop()
        os.close(self._fd)
        if flush_error is not None:
            raise _write_error(self._part, flush_error) from flush_error

    def __enter__(self) -> PartAppender:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        # Already failing: close, but let the first error be the one reported.
        with contextlib.suppress(DownloadError):
            self.close()

    def _hash_chunks(self) -> None:
        failed = False
        while (chunk := self._chunks.get()) is not None:
            if failed:
                continue  # keep taking chunks so the writer never blocks on a full queue
            try:
                self._digest.update(chunk)
            except MemoryError:
                failed = True  # the digest stays short of the file: sync() hashes it again
            else:
                self._hashed += len(chunk)


class _Flusher:
    """``fdatasync`` on request, on its own thread so a slow disk never holds up the network.

    Errors are kept for :meth:`stop`: Linux reports a writeback error to one ``fsync`` only, so
    one swallowed here would never reach the final ``fsync``.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._wanted = threading.Event()
        self._stopping = False
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="download-flush", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        self._wanted.set()

    def stop(self) -> OSError | None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        return self._error

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                _datasync(self._fd)
            except OSError as exc:
                self._error = self._error or exc
                return


def _datasync(fd: int) -> None:
    # fdatasync is POSIX-only (macOS has no os.fdatasync); fsync elsewhere.
    sync = getattr(os, "fdatasync", os.fsync)
    sync(fd)


def _open(part: PartFile, flags: int) -> int:
    try:
        return os.open(part.path, flags | _NO_FOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # what O_NOFOLLOW answers for a link
            raise DownloadError(
                f"{part.path} is a symbolic link, not a partial download; Homefire will not "
                "write through it: delete it and run the same command again"
            ) from exc
        raise


def _write_error(part: PartFile, exc: OSError) -> DownloadError:
    if exc.errno in _DISK_ERRNOS:
        return DiskFull(
            f"the disk filled up while downloading {part.label} ({exc.strerror}); the partial "
            f"file is kept at {part.path}: free some space and run the same command to continue"
        )
    return DownloadError(f"cannot write {part.path}: {exc.strerror}")
