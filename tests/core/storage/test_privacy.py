"""Chats, the ledger, settings and logs are the user's alone: 0600 files in 0700 folders."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.services import AppServices
from app.core.storage.paths import AppPaths
from app.core.storage.privacy import PrivateLogFile


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common default, under which a plain open() makes files every account can read."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


@pytest.mark.usefixtures("open_umask")
def test_homefire_files_are_private_whatever_the_umask(homefire_home: Path) -> None:
    paths = AppPaths.from_env()
    paths.data_dir.mkdir(parents=True)
    os.chmod(paths.data_dir, 0o755)  # left by an older Homefire
    services = AppServices.create()
    chats = services.chats
    try:
        services.settings.default_model = "x"
        services.settings_store.save(services.settings)
        chats.create_conversation("private")
        log_file = paths.log_dir / "homefire.log"
        handler = PrivateLogFile(log_file, maxBytes=200, backupCount=2, encoding="utf-8")
        logger = logging.getLogger("tests.privacy")
        logger.addHandler(handler)
        try:
            for i in range(20):  # several rotations
                logger.warning("line %d with some text to fill the file", i)
        finally:
            logger.removeHandler(handler)
            handler.close()
        folders = [paths.config_dir, paths.data_dir, paths.cache_dir, paths.log_dir]
        folders.append(paths.models_dir)
        assert {f.name: mode(f) for f in folders} == {f.name: 0o700 for f in folders}
        files = [
            paths.settings_file,
            paths.database_file,
            *paths.data_dir.glob("homefire.sqlite3-*"),  # -wal, -shm while open
            *paths.log_dir.glob("homefire.log*"),
        ]
        assert len(files) >= 5
        assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
    finally:
        services.close()
