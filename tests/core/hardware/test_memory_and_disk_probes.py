"""RAM from psutil or /proc/meminfo, and free disk at the models folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.hardware.disk import probe_disk_free
from app.core.hardware.memory import parse_meminfo, probe_ram, ram_from_meminfo
from tests.core.hardware.recorded import fixture


def _psutil_fails() -> tuple[int, int]:
    raise OSError("no /proc in this sandbox")


def test_psutil_answers_first() -> None:
    result = probe_ram(lambda: (64 * 1024**3, 40 * 1024**3))

    assert result.value is not None
    assert (result.value.total_bytes, result.value.available_bytes) == (64 * 1024**3, 40 * 1024**3)


def test_a_meminfo_without_memtotal_is_absent_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "meminfo").write_text(fixture("linux-64gb.proc-meminfo-egrep.partial.txt"))

    result = probe_ram(_psutil_fails, Path.read_text, tmp_path)

    assert result.value is None
    (part,) = result.absent
    assert part.part == "ram"
    assert "MemTotal" in part.reason


def test_old_kernels_available_memory_agrees_with_what_free_showed_on_the_same_host() -> None:
    # meminfo and `free` were recorded a moment apart on one 64 GB host without MemAvailable.
    fields = parse_meminfo(
        "MemTotal: 65901572 kB\n" + fixture("linux-64gb.proc-meminfo-egrep.partial.txt")
    )
    result = ram_from_meminfo(fields)
    free_output = fixture("linux-64gb.free-kib-old-procps.txt")
    buffers_cache_line = next(line for line in free_output.splitlines() if line.startswith("-/+"))
    free_says_available = int(buffers_cache_line.split()[-1]) * 1024

    assert result.value is not None
    assert result.value.available_bytes == pytest.approx(free_says_available, rel=1e-3)


def test_without_psutil_or_proc_the_ram_is_absent(tmp_path: Path) -> None:
    result = probe_ram(_psutil_fails, Path.read_text, tmp_path)

    assert result.value is None
    assert "psutil could not read memory" in result.absent[0].reason


def test_disk_free_is_read_at_the_nearest_existing_parent(tmp_path: Path) -> None:
    asked: list[Path] = []

    def disk_free(path: Path) -> int:
        asked.append(path)
        return 123

    result = probe_disk_free(tmp_path / "data" / "models", disk_free)

    assert result.value == 123
    assert asked == [tmp_path]


def test_an_unreadable_volume_is_an_absent_part(tmp_path: Path) -> None:
    def disk_free(path: Path) -> int:
        raise PermissionError(13, "Permission denied")

    result = probe_disk_free(tmp_path, disk_free)

    assert result.value is None
    assert result.absent[0].part == "disk"
    assert "Permission denied" in result.absent[0].reason
