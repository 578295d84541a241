"""One downloader per blob, across threads and processes (the app and ``homefire pull``).

Two writers appending to one ``.part`` file interleave their bytes, so each blob is fetched
under an exclusive lock at huggingface_hub's own path (``<cache>/.locks/<repo folder>/<sha>.lock``),
which keeps huggingface_hub and Homefire off each other's downloads too. ``filelock`` holds an
OS lock (``flock``/``LockFileEx``) that dies with its process, so a lock file left by a crash
never blocks anyone. A waiter checks pause and cancel while it waits, and gives up with a clear
error when the holder's partial file stops growing (a hung process, or a network share whose
locks never clear) or the file system cannot lock at all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from app.core.downloads.control import TransferControl
from app.core.errors import DownloadError

_POLL_S = 0.25
# Longer than a downloader's own stall timeout and retries, so a holder that is recovering
# from a stalled connection is not mistaken for a dead one.
HOLDER_STALL_S = 120.0


def lock_path(models_dir: Path, repo_folder: str, sha256: str) -> Path:
    return models_dir / ".locks" / repo_folder / f"{sha256}.lock"


@contextlib.contextmanager
def blob_lock(
    lock_file: Path,
    part: Path,
    label: str,
    control: TransferControl,
    holder_stall_s: float = HOLDER_STALL_S,
) -> Iterator[None]:
    """Hold the blob's lock; waits while another downloader makes progress on ``part``."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_file)
    last_size, last_growth = _size(part), time.monotonic()
    while True:
        try:
            lock.acquire(timeout=_POLL_S)
            break
        except Timeout:
            pass
        except (OSError, NotImplementedError) as exc:
            raise DownloadError(
                f"cannot lock {lock_file} to download {label} ({exc}); the models folder may "
                "be on a file system without file locks (a network share): move it to a "
                "local disk"
            ) from exc
        control.check()
        size = _size(part)
        if size != last_size:
            last_size, last_growth = size, time.monotonic()
        elif time.monotonic() - last_growth > holder_stall_s:
            raise DownloadError(
                f"another program is downloading {label} and has made no progress for "
                f"{holder_stall_s:.0f} s; stop it (or wait for it) and try again"
            )
    try:
        yield
    finally:
        lock.release()


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except OSError:
        return -1
