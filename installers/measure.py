"""Measure the Linux package for the README: sizes and start-up times, on this machine.

``python -m installers.measure [DEB]`` (run with the dev venv's Python: the window probe uses
its PySide6). Unpacks the package into a temporary folder, then times, with a fresh
HOMEFIRE_HOME each "first" run and the same one for the "second":

- launch of ``homefire serve`` on the starter model until its "Serving ..." line (the first run
  also joins the starter model's chunks into the models folder);
- launch of ``homefire`` (the desktop app) under Xvfb until the screen is no longer blank.

"Cold" here means a fresh Homefire home, not an empty page cache: the files were just unpacked.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installers.build import ROOT, project_version

SERVING = re.compile(r"^Serving .* at (http://\S+)$")
PROBE = ROOT / "tests" / "installers" / "screen_probe.py"


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_"))
    }
    env.update(PATH="/usr/bin:/bin", HOMEFIRE_HOME=str(home), HF_HUB_OFFLINE="1")
    return env


def seconds_to_serving(launcher: Path, home: Path, timeout: float = 300) -> float:
    started = time.monotonic()
    server = subprocess.Popen(
        [str(launcher), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(home),
    )
    assert server.stdout is not None
    try:
        while time.monotonic() - started < timeout and server.poll() is None:
            ready, _, _ = select.select([server.stdout], [], [], 0.2)
            if ready and SERVING.match(server.stdout.readline().decode().strip()):
                return time.monotonic() - started
        raise RuntimeError(f"no 'Serving' line (exit {server.poll()})")
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stdout.close()


def seconds_to_window(launcher: Path, home: Path, work: Path) -> float:
    run = subprocess.run(
        [
            "xvfb-run", "--auto-servernum",
            "--server-args=-screen 0 1280x800x24 -br -nolisten tcp",
            sys.executable, str(PROBE), "--out", str(work / "window.png"),
            "--log", str(work / "gui.log"), "--", str(launcher),
        ],
        capture_output=True,
        text=True,
        env=dict(_env(home), PATH=os.environ.get("PATH", "/usr/bin:/bin")),
        check=False,
    )  # fmt: skip
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if "error" in report:
        raise RuntimeError(report["error"])
    return float(report["seconds_to_window"])


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    deb = Path(args[0]) if args else ROOT / "dist" / f"homefire_{project_version(ROOT)}_amd64.deb"
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Installed-Size"], capture_output=True, text=True, check=True
    )
    results: dict[str, object] = {
        "deb_bytes": deb.stat().st_size,
        "installed_kib": int(fields.stdout.strip()),
        "load_average_at_start": os.getloadavg()[0],
    }
    with tempfile.TemporaryDirectory(prefix="homefire-measure-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True)
        results["unpack_seconds"] = round(time.monotonic() - started, 2)
        launcher = work / "root" / "usr" / "bin" / "homefire"
        home = work / "home"
        results["serving_first_run_seconds"] = round(seconds_to_serving(launcher, home), 2)
        results["serving_second_run_seconds"] = round(seconds_to_serving(launcher, home), 2)
        if shutil.which("xvfb-run"):
            gui_home = work / "gui-home"
            results["window_first_run_seconds"] = round(
                seconds_to_window(launcher, gui_home, work), 2
            )
            results["window_second_run_seconds"] = round(
                seconds_to_window(launcher, gui_home, work), 2
            )
    print(json.dumps(results, indent=2))  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
