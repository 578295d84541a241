"""Build Homefire's installers for this platform: ``python3 -m installers.build [STEP]``.

Steps (each reuses what an earlier run left under ``build/``):

- ``engine``: a portable llama-cpp-python wheel (see installers/engine.py), kept in
  ``$HOMEFIRE_ENGINE_CACHE`` (default ``~/.cache/homefire-installers/engine``) under its recipe
  key, installed into the build venv ``build/installer-venv``.
- ``app``: icons, then the PyInstaller one-folder app (``dist/pyinstaller/homefire``; on macOS
  also ``dist/pyinstaller/Homefire.app``), checked for the files the app loads at run time.
- ``package``: ``dist/homefire_<version>_amd64.deb`` on Linux, ``dist/Homefire-<version>-arm64.dmg``
  on macOS (unsigned: installers/macos/sign_and_notarize.sh signs and notarises it).
- ``all`` (default): the three in order.
- ``depends``: print the .deb's Depends, one installable package per line, for
  ``apt-get install`` on a CI machine that runs the smoke test.

Every step prints how long it took (measured on this run).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from installers.bundle_layout import required_bundle_files
from installers.engine import EngineBuildError, build_wheel, default_cache_root, recipe_for
from installers.linux import deb
from installers.macos import dmg

ROOT = Path(__file__).resolve().parent.parent


class BuildError(Exception):
    """A build step failed; the message says which and where its log is."""


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def venv(self) -> Path:
        return self.root / "build" / "installer-venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def engine_cache(self) -> Path:
        return default_cache_root()

    @property
    def logs(self) -> Path:
        return self.root / "build" / "logs"

    @property
    def icons(self) -> Path:
        return self.root / "build" / "icons"

    @property
    def pyinstaller_work(self) -> Path:
        return self.root / "build" / "pyinstaller"

    @property
    def pyinstaller_dist(self) -> Path:
        return self.root / "dist" / "pyinstaller"

    @property
    def bundle(self) -> Path:
        return self.pyinstaller_dist / "homefire"

    @property
    def dist(self) -> Path:
        return self.root / "dist"


def project_version(root: Path) -> str:
    """``__version__`` from app/__init__.py, read as text: the build must not import the app."""
    text = (root / "app" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.MULTILINE)
    if match is None:
        raise BuildError("app/__init__.py has no __version__")
    return match.group(1)


def _run(
    command: list[str], log_name: str, layout: Layout, env: dict[str, str] | None = None
) -> None:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log_path = layout.logs / log_name
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        result = subprocess.run(
            command, cwd=layout.root, stdout=log, stderr=subprocess.STDOUT, env=env, check=False
        )
    if result.returncode != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise BuildError(f"{command[0]} ... failed; {log_path}:\n" + "\n".join(tail))


def _stamp_matches(stamp: Path, value: str) -> bool:
    return stamp.is_file() and stamp.read_text(encoding="utf-8") == value


def ensure_venv(layout: Layout) -> None:
    """The build venv with PyInstaller; created with the Python running this script."""
    if not layout.python.exists():
        _run([sys.executable, "-m", "venv", str(layout.venv)], "venv.log", layout)
        _run([str(layout.python), "-m", "pip", "install", "--upgrade", "pip"], "pip.log", layout)
    requirements = ROOT / "installers" / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = layout.venv / ".homefire-build-requirements"
    if not _stamp_matches(stamp, digest):
        _run(
            [str(layout.python), "-m", "pip", "install", "-r", str(requirements)],
            "build-requirements.log",
            layout,
        )
        stamp.write_text(digest, encoding="utf-8")


def step_engine(layout: Layout) -> None:
    ensure_venv(layout)
    recipe = recipe_for()
    print(f"engine: CMAKE_ARGS='{recipe.cmake_args_env}' (build key {recipe.key})")  # noqa: T201
    try:
        wheel = build_wheel(recipe, layout.python, layout.engine_cache, layout.logs / "engine.log")
    except EngineBuildError as exc:
        raise BuildError(str(exc)) from exc
    stamp = layout.venv / ".homefire-engine"
    if not _stamp_matches(stamp, wheel.name + recipe.key):
        _run(
            [
                str(layout.python),
                "-m",
                "pip",
                "install",
                "--no-deps",
                "--force-reinstall",
                str(wheel),
            ],
            "engine-install.log",
            layout,
        )
        stamp.write_text(wheel.name + recipe.key, encoding="utf-8")
    # The app and its other dependencies; llama-cpp-python is already satisfied by the wheel
    # above, so pip does not compile a native one. Editable: PyInstaller reads app/ from here.
    pyproject = (layout.root / "pyproject.toml").read_bytes()
    digest = hashlib.sha256(pyproject).hexdigest()
    stamp = layout.venv / ".homefire-app-deps"
    if not _stamp_matches(stamp, digest):
        _run(
            [str(layout.python), "-m", "pip", "install", "-e", f"{layout.root}[starter]"],
            "app-install.log",
            layout,
        )
        stamp.write_text(digest, encoding="utf-8")


def step_app(layout: Layout) -> None:
    _run([str(layout.python), "-m", "installers.icons", str(layout.icons)], "icons.log", layout)
    env = dict(os.environ, HOMEFIRE_ICON_DIR=str(layout.icons))
    _run(
        [
            str(layout.python), "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
            "--distpath", str(layout.pyinstaller_dist),
            "--workpath", str(layout.pyinstaller_work),
            str(layout.root / "installers" / "homefire.spec"),
        ],
        "pyinstaller.log",
        layout,
        env=env,
    )  # fmt: skip
    missing = [p for p in required_bundle_files(sys.platform) if not any(layout.bundle.glob(p))]
    if missing:
        raise BuildError(f"the bundle lacks files the app loads at run time: {missing}")


def step_package(layout: Layout) -> Path:
    version = project_version(layout.root)
    if sys.platform == "darwin":
        return dmg.build_dmg(
            app=layout.pyinstaller_dist / "Homefire.app",
            out=layout.dist / dmg.dmg_file_name(version, platform.machine()),
            staging=layout.root / "build" / "dmg",
        )
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    inputs = deb.DebInputs(
        bundle_dir=layout.bundle,
        icon_dir=layout.icons,
        version=version,
        arch=arch,
        staging_dir=layout.root / "build" / "deb" / "root",
        out_dir=layout.dist,
    )
    try:
        return deb.build_deb(inputs)
    except deb.DebBuildError as exc:
        raise BuildError(str(exc)) from exc


def _timed(name: str, step: Callable[[Layout], object], layout: Layout) -> None:
    started = time.monotonic()
    result = step(layout)
    seconds = time.monotonic() - started
    suffix = f" -> {result}" if isinstance(result, Path) else ""
    print(f"{name}: {seconds:.0f} s (measured){suffix}", flush=True)  # noqa: T201


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build Homefire's installers.")
    parser.add_argument(
        "step", nargs="?", default="all", choices=("all", "engine", "app", "package", "depends")
    )
    args = parser.parse_args(argv)
    if args.step == "depends":
        print("\n".join(deb.installable_names(deb.DEPENDS)))  # noqa: T201
        return 0
    layout = Layout(ROOT)
    steps: dict[str, Callable[[Layout], object]] = {
        "engine": step_engine,
        "app": step_app,
        "package": step_package,
    }
    wanted = list(steps) if args.step == "all" else [args.step]
    try:
        for name in wanted:
            _timed(name, steps[name], layout)
    except (BuildError, dmg.DmgBuildError) as exc:
        print(f"installers: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
