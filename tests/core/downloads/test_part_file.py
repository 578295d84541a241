"""The ``.part`` file: the sha256 covers exactly the bytes on disk, whatever stopped the writes."""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import threading
from pathlib import Path

import pytest

from app.core.downloads import part_file
from app.core.downloads.control import TransferControl
from app.core.downloads.part_file import PartFile
from app.core.errors import DiskFull, DownloadError

CHUNK = 256 << 10


def chunks(count: int, seed: int = 0) -> list[bytes]:
    return [hashlib.sha256(f"{seed}-{n}".encode()).digest() * (CHUNK // 32) for n in range(count)]


def append_all(part: PartFile, data: list[bytes]) -> None:
    with part.appender() as out:
        for chunk in data:
            out.write(chunk)


def test_digest_covers_every_appended_chunk(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "x.part", "x.gguf")
    data = chunks(12)
    with part.appender() as out:
        for chunk in data:
            out.write(chunk)
    assert part.path.read_bytes() == b"".join(data)
    assert part.hexdigest() == hashlib.sha256(b"".join(data)).hexdigest()
    assert part.sync(TransferControl()) == len(data) * CHUNK


def test_appending_again_continues_the_same_digest(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "x.part", "x.gguf")
    first, second = chunks(3, seed=1), chunks(4, seed=2)
    with part.appender() as out:
        for chunk in first:
            out.write(chunk)
    with part.appender() as out:
        for chunk in second:
            out.write(chunk)
    assert part.hexdigest() == hashlib.sha256(b"".join(first + second)).hexdigest()


def test_a_part_left_by_another_process_is_hashed_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "x.part"
    kept = b"".join(chunks(5))
    path.write_bytes(kept)
    part = PartFile(path, "x.gguf")
    assert part.sync(TransferControl()) == len(kept)
    assert part.hexdigest() == hashlib.sha256(kept).hexdigest()


def test_bytes_the_digest_lacks_are_hashed_again_before_use(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "x.part", "x.gguf")
    with part.appender() as out:
        out.write(chunks(1)[0])
    with part.path.open("ab") as behind_its_back:  # as a write that failed half-way leaves it
        behind_its_back.write(b"tail")
    part.sync(TransferControl())
    assert part.hexdigest() == hashlib.sha256(part.path.read_bytes()).hexdigest()


def test_cancel_stops_hashing_a_kept_part(tmp_path: Path) -> None:
    path = tmp_path / "x.part"
    path.write_bytes(b"".join(chunks(4)))
    control = TransferControl()
    control.cancel()
    with pytest.raises(Exception, match="cancelled"):
        PartFile(path, "x.gguf").sync(control)


def test_full_disk_keeps_the_written_prefix_and_its_digest_is_right(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = 3 * CHUNK + 1000  # mid-chunk: the fourth write is cut short, then refused
    part = PartFile(tmp_path / "x.part", "x.gguf")
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(DiskFull, match=r"disk filled up while downloading x\.gguf"):
            append_all(part, chunks(6))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert part.size == limit
    assert part.sync(TransferControl()) == limit
    assert part.hexdigest() == hashlib.sha256(part.path.read_bytes()).hexdigest()


def test_the_file_is_flushed_to_disk_while_it_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    synced = threading.Event()

    def record(fd: int) -> None:
        flushed.append(os.fstat(fd).st_size)
        synced.set()

    monkeypatch.setattr(part_file, "FLUSH_EVERY", 2 * CHUNK)
    monkeypatch.setattr(part_file, "_datasync", record)
    part = PartFile(tmp_path / "x.part", "x.gguf")
    with part.appender() as out:
        for n, chunk in enumerate(chunks(8)):
            out.write(chunk)
            if n == 3:
                assert synced.wait(30), "no fdatasync after FLUSH_EVERY bytes"
    assert flushed[0] < 8 * CHUNK


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [(errno.ENOSPC, DiskFull, "disk filled up"), (errno.EIO, DownloadError, "cannot write")],
)
def test_a_failed_flush_is_reported_when_the_part_is_closed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    error: type[DownloadError],
    message: str,
) -> None:
    failed = threading.Event()

    def failing_sync(fd: int) -> None:
        failed.set()
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(part_file, "FLUSH_EVERY", CHUNK)
    monkeypatch.setattr(part_file, "_datasync", failing_sync)
    part = PartFile(tmp_path / "x.part", "x.gguf")
    out = part.appender()
    for chunk in chunks(3):
        out.write(chunk)
    assert failed.wait(30)
    with pytest.raises(error, match=message):
        out.close()


def test_a_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "blobs"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(DownloadError, match="cannot write"):
        PartFile(blocker / "x.part", "x.gguf").appender()


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_symlink_planted_as_the_part_file_is_never_written_through(
    tmp_path: Path, target_exists: bool
) -> None:
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    if target_exists:
        victim.write_bytes(b"precious")
    link = tmp_path / "blobs" / "x.part"
    link.parent.mkdir()
    link.symlink_to(victim)
    part = PartFile(link, "x.gguf")
    with pytest.raises(DownloadError, match="symbolic link"):
        append_all(part, chunks(1))
    with pytest.raises(DownloadError, match="symbolic link"):
        part.sync(TransferControl())
    if target_exists:
        assert victim.read_bytes() == b"precious"
    else:
        assert not victim.exists()
