"""The GUI suite's thread check catches a thread a test leaves running."""

from __future__ import annotations

import threading

from tests.gui.conftest import leaked_threads


def test_a_thread_left_running_is_reported() -> None:
    before = set(threading.enumerate())
    release = threading.Event()
    straggler = threading.Thread(target=release.wait, name="straggler", daemon=True)
    straggler.start()
    try:
        assert leaked_threads(before, grace_s=0.05) == [straggler]
    finally:
        release.set()
        straggler.join()
    assert leaked_threads(before, grace_s=0.05) == []
