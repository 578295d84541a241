"""Free disk where models are stored (the folder itself, or its nearest existing parent)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from app.core.hardware.probe import ProbeResult

# shutil.disk_usage's shape, reduced to the free bytes.
DiskFree = Callable[[Path], int]


def shutil_disk_free(path: Path) -> int:
    return int(shutil.disk_usage(path).free)


def nearest_existing(path: Path) -> Path | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


def probe_disk_free(models_dir: Path, disk_free: DiskFree = shutil_disk_free) -> ProbeResult[int]:
    # The models folder may not exist yet on a first run; its volume is that of its parent.
    existing = nearest_existing(models_dir)
    if existing is None:
        return ProbeResult.missing("disk", f"no existing folder on the path {models_dir}")
    try:
        return ProbeResult(disk_free(existing))
    except OSError as exc:
        reason = f"cannot read free space at {existing}: {exc.strerror or exc}"
        return ProbeResult.missing("disk", reason)
