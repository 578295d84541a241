"""Homefire's files are the user's alone: folders 0700, files 0600, whatever the umask says.

Chats, the usage ledger, settings and logs can hold private text (prompts, replies, file
contents an IDE sent). A default umask of 022 would leave them readable by every account on
the machine, so each is created with its mode rather than relying on the process umask (a
library must not change a process-wide setting). On Windows, where a user's profile folders
are already private, the modes are a no-op.
"""

from __future__ import annotations

import logging
import os
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700, also when it existed with wider rights."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    _restrict(path, FOLDER_MODE)


def private_file(path: Path) -> None:
    """Create ``path`` empty when missing, and make it 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    _restrict(path, FILE_MODE)


class PrivateLogFile(RotatingFileHandler):
    """A rotating log whose every file (the first and each one after a rotation) is 0600."""

    def _open(self) -> TextIOWrapper:
        private_file(Path(self.baseFilename))
        return super()._open()


def _restrict(path: Path, mode: int) -> None:
    try:
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)
    except OSError as exc:  # not ours (a shared folder the user chose): say so, carry on
        log.warning("cannot make %s private: %s", path, exc)
