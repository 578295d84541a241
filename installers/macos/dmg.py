"""``Homefire-<version>-arm64.dmg``: Homefire.app next to an Applications link, for drag-install.

``hdiutil`` ships with macOS, so no create-dmg or dmgbuild is needed. It runs only on a Mac;
on Linux this module is imported (the build script is shared) but ``build_dmg`` refuses.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

VOLUME_NAME = "Homefire"


class DmgBuildError(Exception):
    """The disk image could not be made."""


def dmg_file_name(version: str, machine: str) -> str:
    return f"Homefire-{version}-{machine}.dmg"


def hdiutil_command(staging: Path, out: Path) -> list[str]:
    # UDZO: zlib-compressed read-only image, opens on every supported macOS.
    return [
        "hdiutil", "create", "-volname", VOLUME_NAME, "-srcfolder", str(staging),
        "-fs", "HFS+", "-format", "UDZO", "-ov", str(out),
    ]  # fmt: skip


def build_dmg(app: Path, out: Path, staging: Path) -> Path:
    if sys.platform != "darwin":
        raise DmgBuildError("a .dmg can only be built on macOS (hdiutil)")
    if not (app / "Contents" / "Info.plist").is_file():
        raise DmgBuildError(f"{app} is not an app bundle")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # ditto keeps the bundle's symlinks, extended attributes and any signature intact.
    subprocess.run(["ditto", str(app), str(staging / app.name)], check=True)
    (staging / "Applications").symlink_to("/Applications")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(hdiutil_command(staging, out), capture_output=True, text=True)
    if result.returncode != 0:
        raise DmgBuildError(f"hdiutil failed: {result.stderr.strip()}")
    return out
