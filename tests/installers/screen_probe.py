"""Run under ``xvfb-run``: start a program, wait until the screen shows more than the blank root
window, save a screenshot and print one JSON line about it.

Used by test_deb_smoke.py (the frozen app's window) and installers' cold-start measurement.
The X server must be started with ``-br`` (black root): Xvfb's default root is a stipple pattern
that is anything but blank. The screen is read with Qt's xcb platform from this venv, which is
independent of the Qt copy inside the program under test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PySide6.QtGui import QGuiApplication, QImage

# Grey-level standard deviation a blank screen cannot reach but any drawn window exceeds.
BLANK_STDDEV = 2.0
POLL_SECONDS = 0.25
# After the first drawn frame, let the window finish its first layout before the screenshot.
SETTLE_SECONDS = 2.0


def grey_stddev(image: QImage) -> float:
    """Standard deviation of the grey levels of every 4th pixel in each direction."""
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    data = bytes(grey.constBits())
    stride = grey.bytesPerLine()
    samples = [
        data[y * stride + x] for y in range(0, grey.height(), 4) for x in range(0, grey.width(), 4)
    ]
    return statistics.pstdev(samples) if samples else 0.0


def grab(app: QGuiApplication) -> QImage:
    screen = app.primaryScreen()
    return screen.grabWindow(0).toImage()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--log", type=Path, required=True, help="program's stdout+stderr")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    program = args.program[1:] if args.program[:1] == ["--"] else args.program

    app = QGuiApplication([sys.argv[0], "-platform", "xcb"])
    baseline = grey_stddev(grab(app))
    report: dict[str, object] = {"baseline_stddev": round(baseline, 3)}
    if baseline > BLANK_STDDEV:
        report["error"] = "the screen is not blank before the program starts (no -br?)"
        print(json.dumps(report))
        return 2

    env = dict(os.environ, QT_QPA_PLATFORM="xcb")
    started = time.monotonic()
    try:
        with args.log.open("wb") as log:
            child = subprocess.Popen(program, stdout=log, stderr=subprocess.STDOUT, env=env)
    except OSError as exc:
        report["error"] = f"cannot start {program[:1]}: {exc}"
        print(json.dumps(report))
        return 1
    try:
        while time.monotonic() - started < args.timeout:
            if child.poll() is not None:
                report["error"] = f"the program exited with {child.returncode} before drawing"
                break
            if grey_stddev(grab(app)) > BLANK_STDDEV:
                report["seconds_to_window"] = round(time.monotonic() - started, 2)
                time.sleep(SETTLE_SECONDS)
                image = grab(app)
                report["stddev"] = round(grey_stddev(image), 3)
                report["size"] = [image.width(), image.height()]
                image.save(str(args.out), "PNG")  # type: ignore[call-overload]
                report["screenshot"] = str(args.out)
                break
            time.sleep(POLL_SECONDS)
        else:
            report["error"] = f"nothing drawn within {args.timeout:.0f} s"
    finally:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        report["program_exit"] = child.returncode
    print(json.dumps(report))
    return 0 if "error" not in report else 1


if __name__ == "__main__":
    sys.exit(main())
