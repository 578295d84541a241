"""Which system libraries a frozen bundle needs from the machine it runs on, and which Debian
packages provide them: the evidence behind the .deb's ``Depends``.

``ldd`` on every ELF file in the bundle lists what the dynamic linker resolves; whatever
resolves outside the bundle (or not at all) must come from the system. ``dpkg -S`` names the
package owning each resolved file. Run ``python -m installers.linux.system_libraries BUNDLE``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ELF_MAGIC = b"\x7fELF"

# "libfoo.so.1 => /usr/lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" or "libfoo.so.1 => not found"
_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")


@dataclass(frozen=True)
class SystemLibraries:
    resolved: dict[str, Path]  # soname -> file outside the bundle
    missing: dict[str, set[str]]  # soname -> bundle files that need it but ldd found nowhere


def elf_files(root: Path) -> list[Path]:
    """Regular files under ``root`` that start with the ELF magic."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as handle:
                if handle.read(4) == ELF_MAGIC:
                    found.append(path)
    return found


def parse_ldd(output: str) -> dict[str, str]:
    """soname -> resolved path, or ``"not found"``; lines without ``=>`` (vdso, the loader) are
    not dependencies a package can provide."""
    result = {}
    for line in output.splitlines():
        match = _LDD_LINE.match(line)
        if match:
            result[match.group(1)] = match.group(2)
    return result


def system_libraries(bundle: Path, elf_paths: Iterable[Path] | None = None) -> SystemLibraries:
    bundle = bundle.resolve()
    resolved: dict[str, Path] = {}
    missing: dict[str, set[str]] = {}
    bundled_names = {p.name for p in bundle.rglob("*")}
    # PyInstaller's bootloader puts the bundle's library folder first on LD_LIBRARY_PATH, so a
    # library the bundle carries wins over the system's copy at run time; ldd must see the same.
    env = {"LD_LIBRARY_PATH": str(bundle / "_internal"), "PATH": "/usr/bin:/bin"}
    for elf in elf_files(bundle) if elf_paths is None else elf_paths:
        run = subprocess.run(
            ["ldd", str(elf)], capture_output=True, text=True, check=False, env=env
        )
        if run.returncode != 0:
            continue  # static or not a loadable object for this machine
        for soname, target in parse_ldd(run.stdout).items():
            if target == "not found":
                # A library the bundle carries but this file finds only through a path Qt or
                # the bootloader sets at run time (e.g. Qt plugins -> Qt/lib) is not missing.
                if soname not in bundled_names:
                    missing.setdefault(soname, set()).add(str(elf.relative_to(bundle)))
                continue
            path = Path(target).resolve()
            if not path.is_relative_to(bundle):
                resolved[soname] = Path(target)
    return SystemLibraries(resolved=resolved, missing=missing)


def owning_packages(paths: Iterable[Path]) -> dict[Path, str]:
    """path -> Debian package name (architecture qualifier dropped), via ``dpkg -S``."""
    owners: dict[Path, str] = {}
    for path in paths:
        # dpkg knows the path under /usr or /lib as installed (merged-/usr aliases differ).
        for candidate in (path, path.resolve()):
            run = subprocess.run(
                ["dpkg", "-S", str(candidate)], capture_output=True, text=True, check=False
            )
            if run.returncode == 0 and ":" in run.stdout:
                owners[path] = run.stdout.split(":")[0].strip()
                break
    return owners


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="System libraries a frozen bundle links.")
    parser.add_argument("bundle", type=Path)
    args = parser.parse_args(argv)
    libs = system_libraries(args.bundle)
    owners = owning_packages(libs.resolved.values())
    for soname, path in sorted(libs.resolved.items()):
        print(f"{soname:32} {owners.get(path, '?'):28} {path}")  # noqa: T201
    for soname, users in sorted(libs.missing.items()):
        print(f"{soname:32} {'NOT FOUND':28} needed by {sorted(users)[0]}")  # noqa: T201
    return 1 if libs.missing else 0


if __name__ == "__main__":
    sys.exit(main())
