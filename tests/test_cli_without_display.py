"""``homefire`` with no command where the window cannot open: one line and exit 1, not a Qt abort
or a server started instead."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from app.cli import run


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt needs a display on Linux only")
def test_no_display_is_one_clear_line_and_exit_1() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    done = subprocess.run(
        [sys.executable, "-m", "app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "homefire: no display to open the window on (DISPLAY and WAYLAND_DISPLAY are unset); "
        "run `homefire serve` for the headless server"
    ]


def test_the_command_line_loads_qt_only_when_the_window_is_wanted() -> None:
    # lint-imports checks that the core and the commands never import Qt; app.cli imports the
    # desktop app inside a function, which only running the import can check.
    code = (
        "import sys, app.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_broken_qt_is_one_clear_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    # None in sys.modules makes the import fail with ImportError, as a broken PySide6 does.
    monkeypatch.setitem(sys.modules, "app.gui.main", None)
    assert run([]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("homefire: the desktop app cannot start, Qt (PySide6) does not import")
    assert line.endswith("run `homefire serve` for the headless server")
    assert not any(t.name == "http-server" for t in threading.enumerate())
