"""The .deb places a bundle under /opt/homefire with a launcher, menu entry, icons and Depends.

Runs dpkg-deb on a small stand-in bundle, so it is fast and needs no PyInstaller build; the
real package is checked end to end by test_deb_smoke.py.
"""

from __future__ import annotations

import configparser
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from installers.linux import deb

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")


@pytest.fixture
def inputs(tmp_path: Path) -> deb.DebInputs:
    bundle = tmp_path / "bundle"
    (bundle / "_internal").mkdir(parents=True)
    launcher = bundle / "homefire"
    launcher.write_text("#!/bin/sh\necho homefire 9.9.9\n", encoding="utf-8")
    launcher.chmod(0o700)  # a restrictive umask at build time must not leak into the package
    (bundle / "_internal" / "data.bin").write_bytes(b"x" * 5000)
    icons = tmp_path / "icons"
    for size in (16, 48):
        png = icons / "hicolor" / f"{size}x{size}" / "apps" / "homefire.png"
        png.parent.mkdir(parents=True)
        png.write_bytes(b"\x89PNG\r\n\x1a\n")
    return deb.DebInputs(
        bundle_dir=bundle,
        icon_dir=icons,
        version="9.9.9",
        arch="amd64",
        staging_dir=tmp_path / "stage",
        out_dir=tmp_path / "dist",
    )


def _field(package: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(package), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_package_is_named_and_described_for_dpkg(inputs: deb.DebInputs) -> None:
    package = deb.build_deb(inputs)
    assert package.name == "homefire_9.9.9_amd64.deb"
    assert _field(package, "Package") == "homefire"
    assert _field(package, "Version") == "9.9.9"
    assert _field(package, "Architecture") == "amd64"
    assert int(_field(package, "Installed-Size")) >= 5  # the 5000-byte file alone is 5 KiB


def test_depends_names_the_libraries_qt_xcb_needs(inputs: deb.DebInputs) -> None:
    depends = deb.dependency_names(_field(deb.build_deb(inputs), "Depends").split(","))
    assert {
        "libxcb-cursor0",
        "libxkbcommon-x11-0",
        "libegl1",
        "libgl1",
        "libfontconfig1",
        "libdbus-1-3",
        "libwayland-client0",
    } <= depends


def test_launcher_on_path_points_at_the_bundle_relatively(inputs: deb.DebInputs) -> None:
    root = inputs.staging_dir.parent / "unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb.build_deb(inputs)), str(root)], check=True)
    launcher = root / "usr" / "bin" / "homefire"
    assert launcher.is_symlink()
    assert not os.readlink(launcher).startswith("/")
    assert launcher.resolve() == (root / "opt" / "homefire" / "homefire").resolve()
    run = subprocess.run([str(launcher)], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "homefire 9.9.9"


def test_files_are_owned_by_root_with_world_readable_modes(inputs: deb.DebInputs) -> None:
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb.build_deb(inputs))], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert all(" root/root " in line for line in listing)
    modes = {line.split()[-1].lstrip("."): line.split()[0] for line in listing}
    assert modes["/opt/homefire/homefire"] == "-rwxr-xr-x"
    assert modes["/opt/homefire/_internal/data.bin"] == "-rw-r--r--"


def test_menu_entry_launches_homefire_with_its_icon(inputs: deb.DebInputs) -> None:
    root = deb.stage(inputs)
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]
    entry.read(root / "usr" / "share" / "applications" / "homefire.desktop", encoding="utf-8")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert desktop["Exec"].split()[0] == "homefire"
    assert (root / "usr" / "bin" / desktop["Exec"].split()[0]).is_symlink()
    assert desktop["Icon"] == "homefire"
    assert (root / "usr/share/icons/hicolor/48x48/apps/homefire.png").is_file()
    assert desktop["Terminal"] == "false"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None, reason="desktop-file-utils")
def test_menu_entry_passes_desktop_file_validate() -> None:
    run = subprocess.run(
        ["desktop-file-validate", str(deb.DESKTOP_FILE)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_bundle_without_the_executable_is_refused(inputs: deb.DebInputs) -> None:
    (inputs.bundle_dir / "homefire").unlink()
    with pytest.raises(deb.DebBuildError, match="no 'homefire' executable"):
        deb.build_deb(inputs)


def test_installed_size_counts_kib_rounded_up_per_file(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x")
    (tmp_path / "b").write_bytes(b"x" * 2049)
    (tmp_path / "link").symlink_to("b")
    # a: 1 KiB, b: 3 KiB, link: 1, directory d: 1
    assert deb.installed_size_kib(tmp_path) == 6


def test_dependency_names_drop_versions_and_split_alternatives() -> None:
    assert deb.dependency_names(["libc6 (>= 2.36)", "libgl1 | libgl1-mesa-glx", " zlib1g"]) == {
        "libc6",
        "libgl1",
        "libgl1-mesa-glx",
        "zlib1g",
    }


def test_staged_directories_are_0755(inputs: deb.DebInputs) -> None:
    root = deb.stage(inputs)
    mode = stat.S_IMODE((root / "opt" / "homefire" / "_internal").stat().st_mode)
    assert mode == 0o755


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="needs apt-cache")
def test_apt_install_list_picks_the_alternative_this_machine_has() -> None:
    clauses = ["libc6 (>= 2.36)", "homefire-no-such-package | libc6", "homefire-no-such-package"]
    assert deb.installable_names(clauses) == ["libc6", "libc6", "homefire-no-such-package"]
