"""app.core must never import Qt: it runs headless (homefire serve) and in tests without a screen."""

from __future__ import annotations

import subprocess
import sys


def test_importing_every_core_module_loads_no_pyside6() -> None:
    code = (
        "import pkgutil, importlib, sys, app.core\n"
        "for info in pkgutil.walk_packages(app.core.__path__, 'app.core.'):\n"
        "    importlib.import_module(info.name)\n"
        "import app.cli\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
