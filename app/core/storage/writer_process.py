"""Which process wrote a row, so a later start can tell a live writer from one that was killed.

A pid alone is not enough (pids are reused), so the process's start time goes with it.
"""

from __future__ import annotations

import psutil


def current_process() -> tuple[int, float]:
    """(pid, start time) of this process."""
    process = psutil.Process()
    return process.pid, process.create_time()


def process_alive(pid: int, started: float) -> bool:
    """Is the process with this pid and start time still running (not a zombie)?"""
    try:
        process = psutil.Process(pid)
        return (
            abs(process.create_time() - started) < 0.01 and process.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False
