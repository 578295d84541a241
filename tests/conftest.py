"""Fixtures every test gets: Homefire's files live in a temporary HOMEFIRE_HOME, never the real one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def homefire_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("homefire-home")
    monkeypatch.setenv("HOMEFIRE_HOME", str(home))
    # The Hub is never reached from tests unless a test points HF_ENDPOINT at its loopback server.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf-home"))
    yield home
