"""Smoke test of the real Linux package: unpack the .deb into a fresh folder and run what a user
would run, with no Python, venv or source tree of ours on the path.

The package comes from ``$HOMEFIRE_DEB`` or ``dist/homefire_<version>_<arch>.deb`` (what
``make installers`` builds). Building it takes minutes, so this module does not build it: CI
runs ``make installers`` first and sets ``HOMEFIRE_REQUIRE_DEB=1``, which turns a missing
package, ``xvfb-run`` or system library into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import __version__
from app.core.library.starter import STARTER_NAME
from installers.linux.deb import PACKAGE, deb_file_name, dependency_names
from installers.linux.system_libraries import owning_packages, system_libraries

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("screen_probe.py")
REQUIRED = os.environ.get("HOMEFIRE_REQUIRE_DEB") == "1"
SERVING = re.compile(r"^Serving .* at (http://\S+)$")


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (HOMEFIRE_REQUIRE_DEB=1)")
    pytest.skip(reason)


def _arch() -> str:
    if shutil.which("dpkg") is None:
        return "amd64"
    return subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def deb_path() -> Path:
    if shutil.which("dpkg-deb") is None:
        _unavailable("needs dpkg-deb")
    explicit = os.environ.get("HOMEFIRE_DEB")
    path = Path(explicit) if explicit else ROOT / "dist" / deb_file_name(__version__, _arch())
    if not path.is_file():
        _unavailable(f"no package at {path}; build it with `make installers`")
    return path


@pytest.fixture(scope="module")
def unpacked(deb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("deb-root")
    subprocess.run(["dpkg-deb", "-x", str(deb_path), str(root)], check=True)
    return root


def _field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def _clean_env(home: Path) -> dict[str, str]:
    """What a desktop session gives the app: no venv, no PYTHONPATH, no source tree."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "LD_LIBRARY_PATH", "QT_"))
    }
    env.update(PATH="/usr/bin:/bin", HOMEFIRE_HOME=str(home), HF_HUB_OFFLINE="1")
    return env


def test_package_fields_match_this_version(deb_path: Path) -> None:
    assert _field(deb_path, "Package") == PACKAGE
    assert _field(deb_path, "Version") == __version__
    assert _field(deb_path, "Architecture") == _arch()


def test_depends_cover_every_system_library_the_bundle_links(
    deb_path: Path, unpacked: Path
) -> None:
    libs = system_libraries(unpacked / "opt" / PACKAGE)
    if libs.missing:
        _unavailable(
            "this machine lacks libraries the bundle links (install the package's Depends): "
            + ", ".join(sorted(libs.missing))
        )
    owners = owning_packages(libs.resolved.values())
    unowned = sorted(str(p) for p in libs.resolved.values() if p not in owners)
    assert not unowned, f"system libraries no Debian package owns: {unowned}"
    declared = dependency_names(_field(deb_path, "Depends").split(","))
    undeclared = sorted(set(owners.values()) - declared)
    assert not undeclared, f"the bundle links libraries from packages not in Depends: {undeclared}"


def test_launcher_and_menu_entry_are_installed(unpacked: Path) -> None:
    launcher = unpacked / "usr" / "bin" / PACKAGE
    assert launcher.is_symlink()
    assert launcher.resolve() == (unpacked / "opt" / PACKAGE / PACKAGE).resolve()
    assert (unpacked / "usr/share/applications/homefire.desktop").is_file()
    for size in (16, 32, 48, 128, 256):
        assert (unpacked / f"usr/share/icons/hicolor/{size}x{size}/apps/homefire.png").is_file()


def test_bundled_homefire_prints_its_version(unpacked: Path, tmp_path: Path) -> None:
    run = subprocess.run(
        [str(unpacked / "usr" / "bin" / PACKAGE), "--version"],
        capture_output=True,
        text=True,
        env=_clean_env(tmp_path / "home"),
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"homefire {__version__}"


@pytest.fixture
def bundled_server(unpacked: Path, tmp_path: Path) -> Iterator[str]:
    """``homefire serve`` from the package on the starter model; yields the /v1 base URL."""
    stderr_path = tmp_path / "serve.err"
    with stderr_path.open("wb") as stderr:
        launcher = str(unpacked / "usr" / "bin" / PACKAGE)
        server = subprocess.Popen(
            [launcher, "serve", "--model", STARTER_NAME, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_clean_env(tmp_path / "home"),
        )
    assert server.stdout is not None
    try:
        url = None
        deadline = time.monotonic() + 240  # first start joins the starter model's chunks
        while url is None and time.monotonic() < deadline and server.poll() is None:
            ready, _, _ = select.select([server.stdout], [], [], 1.0)
            if ready:
                match = SERVING.match(server.stdout.readline().decode().strip())
                url = match.group(1) if match else None
        if url is None:
            log = stderr_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            pytest.fail(f"the bundled server never said 'Serving' (exit {server.poll()}):\n{log}")
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def test_bundled_server_answers_a_chat_completion(bundled_server: str) -> None:
    response = httpx.post(
        f"{bundled_server}/chat/completions",
        json={
            "model": STARTER_NAME,
            "messages": [{"role": "user", "content": "Name one colour."}],
            "max_tokens": 16,
            "temperature": 0,
        },
        timeout=120,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # A reply arrived and ran to the model's end or the limit; its words depend on the CPU.
    choice = body["choices"][0]
    assert choice["finish_reason"] in ("stop", "length")
    assert isinstance(choice["message"]["content"], str)
    assert 0 < body["usage"]["completion_tokens"] <= 16


def test_bundled_desktop_app_draws_a_window_under_xvfb(unpacked: Path, tmp_path: Path) -> None:
    if shutil.which("xvfb-run") is None:
        _unavailable("needs xvfb-run (Debian package xvfb)")
    screenshot = tmp_path / "homefire-window.png"
    env = _clean_env(tmp_path / "home")
    # The probe itself runs on this venv's Python and Qt; only the program under test is bundled.
    run = subprocess.run(
        [
            "xvfb-run", "--auto-servernum",
            "--server-args=-screen 0 1280x800x24 -br -nolisten tcp",
            sys.executable, str(PROBE),
            "--out", str(screenshot), "--log", str(tmp_path / "gui.log"), "--timeout", "150",
            "--", str(unpacked / "usr" / "bin" / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env=dict(env, PATH=os.environ.get("PATH", "/usr/bin:/bin")),
        timeout=240,
    )  # fmt: skip
    lines = run.stdout.strip().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    log = (tmp_path / "gui.log").read_text(encoding="utf-8", errors="replace")[-2000:]
    assert run.returncode == 0, f"{report or run.stderr}\n--- app log ---\n{log}"
    assert report["stddev"] > 2.0
    assert screenshot.stat().st_size > 0


# What ggml's CPU backend may use in the shipped build (GGML_NATIVE=OFF on x86-64).
PORTABLE_CPU_FEATURES = {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}


def test_shipped_engine_uses_only_the_portable_cpu_baseline(unpacked: Path) -> None:
    lib_dir = unpacked / "opt" / PACKAGE / "_internal" / "llama_cpp" / "lib"
    run = subprocess.run(
        [sys.executable, "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info())"],
        capture_output=True,
        text=True,
        env=dict(os.environ, LLAMA_CPP_LIB_PATH=str(lib_dir)),
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "CPU :" in run.stdout, run.stdout
    cpu = run.stdout.split("CPU :", 1)[1]
    enabled = {
        name.strip()
        for name, _, value in (f.partition("=") for f in cpu.split("|"))
        if value.strip() == "1"
    }
    isa = {
        name for name in enabled if name.startswith(("SSE", "SSSE", "AVX", "F16C", "FMA", "BMI"))
    }
    assert "AVX2" in isa
    assert isa <= PORTABLE_CPU_FEATURES, f"tuned beyond the baseline: {isa - PORTABLE_CPU_FEATURES}"
