"""``homefire worker`` as a child process: how the app shares this machine.

ggml's RPC server cannot be stopped inside a process (its accept loop never returns), so the
desktop app runs the worker as a child it can end: SIGTERM (the command's own clean stop), then
a kill after a deadline. The child says where it listens in one stdout line and what it shares in
its stderr lines; both pipes are drained for the child's whole life, so its per-connection lines
never fill a pipe and stall it.
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from typing import IO

from app.core.cluster.worker import DEFAULT_PORT, WorkerAddress
from app.core.errors import WorkerError

log = logging.getLogger(__name__)

START_DEADLINE_S = 60.0  # importing llama.cpp and initialising a GPU backend take seconds
STOP_DEADLINE_S = 10.0
_LISTENING = re.compile(r"^Worker listening at (\S+)")
_SHARING = "Sharing "
_KEPT_LINES = 50  # the child's last lines, for the error when it fails


def homefire_command(args: Sequence[str]) -> list[str]:
    """The command that runs ``homefire ARGS`` in a new process, from source or frozen.

    The frozen app (PyInstaller) is one executable whose entry point takes the same
    subcommands; from source (or an installed wheel) it is this interpreter's ``-m app``.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, *args]
    return [sys.executable, "-m", "app", *args]


def worker_command(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    trust_network: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """``homefire worker`` with these options, as a command line."""
    args = ["worker", "--host", host, "--port", str(port), *extra]
    if trust_network:
        args.append("--trust-network")
    return homefire_command(args)


class WorkerProcess:
    """A running ``homefire worker`` child. :meth:`start` returns once it listens."""

    def __init__(self, command: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self._env = env
        self._process: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._listening = threading.Event()
        self._lock = threading.Lock()
        self._address: WorkerAddress | None = None
        self._shared: list[str] = []
        self._last_lines: deque[str] = deque(maxlen=_KEPT_LINES)

    @property
    def address(self) -> WorkerAddress:
        if self._address is None:
            raise WorkerError("the worker is not listening")
        return self._address

    @property
    def shared(self) -> list[str]:
        """What the worker shares, one line per device (its own words: name, free of total)."""
        with self._lock:
            return list(self._shared)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return self._process.poll() if self._process is not None else None

    def start(self, deadline_s: float = START_DEADLINE_S) -> WorkerAddress:
        """Start the child and wait until it listens; ``WorkerError`` with its own last words
        when it exits first or is still silent at the deadline (then it is stopped)."""
        if self._process is not None:
            raise WorkerError("this worker was started already")
        try:
            self._process = subprocess.Popen(
                self.command,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            raise WorkerError(f"could not start `homefire worker`: {exc}") from exc
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        for name, stream in (("stdout", self._process.stdout), ("stderr", self._process.stderr)):
            reader = threading.Thread(
                target=self._drain, args=(stream,), name=f"worker-{name}", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        # Wakes at the listening line or when both pipes close (the child ended).
        waiter = threading.Thread(target=self._wake_at_end, name="worker-wait", daemon=True)
        waiter.start()
        self._readers.append(waiter)
        if self._listening.wait(deadline_s) and self._address is not None:
            return self._address
        why = self._last_words()
        code = self.exit_code
        self.stop()
        if code is None:
            raise WorkerError(
                f"`homefire worker` did not start listening within {deadline_s:g} s"
                + (f": {why}" if why else "")
            )
        raise WorkerError(
            f"`homefire worker` stopped (exit code {code})" + (f": {why}" if why else "")
        )

    def stop(self, deadline_s: float = STOP_DEADLINE_S) -> int | None:
        """SIGTERM (the worker stops cleanly), then a kill after ``deadline_s``; joins the
        readers. Returns the exit code (None: never started)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(deadline_s)
            except subprocess.TimeoutExpired:
                log.warning("homefire worker ignored SIGTERM for %g s; killing it", deadline_s)
                process.kill()
                process.wait(deadline_s)
        for reader in self._readers:
            reader.join(deadline_s)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        return process.returncode

    # -- reading the child -----------------------------------------------------------------------

    def _drain(self, stream: IO[str]) -> None:
        try:
            for raw in stream:
                line = raw.rstrip()
                match = _LISTENING.match(line)
                with self._lock:
                    self._last_lines.append(line)
                    if line.startswith(_SHARING):
                        self._shared.append(line.removeprefix(_SHARING))
                if match and self._address is None:
                    self._address = WorkerAddress.parse(match.group(1))
                    self._listening.set()
        except (OSError, ValueError):
            pass  # the pipe was closed by stop()

    def _wake_at_end(self) -> None:
        for reader in self._readers[:2]:
            reader.join()
        self._listening.set()

    def _last_words(self) -> str:
        """The child's last line that says something (its ``homefire: ...`` error, if any)."""
        with self._lock:
            lines = [line for line in self._last_lines if line.strip()]
        errors = [line for line in lines if line.startswith("homefire:")]
        chosen = errors[-1] if errors else (lines[-1] if lines else "")
        return chosen.removeprefix("homefire: ")
