"""SQLite as Homefire uses it: WAL, ``synchronous=FULL``, foreign keys, versioned migrations.

Several stores (usage ledger, chat history) share one database file, so each keeps its own
schema version under a component name in ``schema_versions``. Migrations run in one transaction,
after a backup copy of the database, so a failed upgrade leaves the old data intact twice over.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import StorageError
from app.core.storage.privacy import private_file

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Migration:
    """The statements that bring a component's schema from ``version - 1`` to ``version``."""

    version: int
    statements: tuple[str, ...]


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` in autocommit mode.

    Transactions are explicit (:func:`transaction`), so the sqlite3 module never opens one
    behind our back. The connection may be shared between threads if the caller serialises use.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # SQLite gives its -wal and -shm files the database file's mode, so one chmod covers all.
        private_file(path)
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            # Some file systems (network shares) refuse WAL; rollback journal is still safe.
            log.warning("database %s runs in %s mode, not WAL", path, mode)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error as exc:
        conn.close()
        raise StorageError(f"the database {path} cannot be used ({exc}); move it aside") from exc
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction: takes the write lock at once, commits on success, else rolls back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection, component: str) -> int:
    _ensure_version_table(conn)
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return int(row[0]) if row else 0


def migrate(
    conn: sqlite3.Connection, db_path: Path, component: str, migrations: Sequence[Migration]
) -> int:
    """Apply the migrations ``component`` has not seen yet; return its schema version.

    ``migrations`` are numbered 1, 2, 3... in order. A database written by a newer Homefire
    (a version above the last migration) is refused rather than guessed at.
    """
    _check_numbering(migrations)
    target = len(migrations)
    try:
        current = schema_version(conn, component)
        if current > target:
            raise StorageError(
                f"the database {db_path} was written by a newer Homefire "
                f"({component} schema {current}, this version knows {target}); update Homefire"
            )
        if current == target:
            return current
        if _has_user_tables(conn):
            backup(conn, _backup_path(db_path, component, current))
        with transaction(conn):
            # Another process may have migrated while we made the backup.
            current = schema_version(conn, component)
            for migration in migrations[current:]:
                for statement in migration.statements:
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                (component, target),
            )
    except sqlite3.Error as exc:
        raise StorageError(f"cannot migrate the {component} tables in {db_path}: {exc}") from exc
    log.info("migrated %s in %s from schema %d to %d", component, db_path, current, target)
    return target


def backup(conn: sqlite3.Connection, destination: Path) -> None:
    """A consistent copy of the live database (WAL content included) at ``destination``."""
    destination.unlink(missing_ok=True)
    private_file(destination)
    with closing(sqlite3.connect(destination)) as target:
        conn.backup(target)


def _backup_path(db_path: Path, component: str, version: int) -> Path:
    return db_path.with_name(f"{db_path.name}.{component}-v{version}.bak")


def _ensure_version_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions "
        "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )


def _has_user_tables(conn: sqlite3.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' AND name != 'schema_versions'"
    ).fetchone()
    return bool(row[0])


def _check_numbering(migrations: Sequence[Migration]) -> None:
    for expected, migration in enumerate(migrations, start=1):
        if migration.version != expected:
            raise ValueError(f"migration {migration.version} is out of order (expected {expected})")
