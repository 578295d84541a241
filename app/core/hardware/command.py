"""Running the system tools probes read (``sysctl``, ``system_profiler``); injectable for tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from app.core.errors import HardwareProbeError

# A runner takes argv and returns stdout; it raises HardwareProbeError when the tool cannot answer.
CommandRunner = Callable[[Sequence[str]], str]
# A reader returns a file's text; it raises OSError like Path.read_text.
TextReader = Callable[[Path], str]

COMMAND_TIMEOUT_S = 10.0


def run_command(argv: Sequence[str]) -> str:
    """Run a read-only system tool; a missing tool, refusal or hang becomes HardwareProbeError."""
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise HardwareProbeError(f"{argv[0]} is not installed") from exc
    except PermissionError as exc:
        raise HardwareProbeError(f"no permission to run {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise HardwareProbeError(f"{argv[0]} did not answer in {COMMAND_TIMEOUT_S:.0f} s") from exc
    except OSError as exc:
        raise HardwareProbeError(f"{argv[0]} could not run: {exc}") from exc
    if done.returncode != 0 and not done.stdout.strip():
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise HardwareProbeError(f"{argv[0]} failed: {detail[0]}")
    return done.stdout


def read_text_file(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")
