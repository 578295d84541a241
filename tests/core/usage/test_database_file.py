"""The shared SQLite helper: durable settings, migrations in one transaction after a backup."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.core.errors import StorageError
from app.core.storage import db

NOTES_V1 = db.Migration(1, ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)",))
NOTES_V2 = db.Migration(2, ("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",))


def test_a_connection_is_durable_and_checks_foreign_keys(tmp_path: Path) -> None:
    conn = db.connect(tmp_path / "sub" / "h.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        conn.close()


def test_migrations_apply_once_in_order_per_component(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = db.connect(path)
    try:
        assert db.migrate(conn, path, "notes", [NOTES_V1]) == 1
        conn.execute("INSERT INTO notes (text) VALUES ('kept')")
        assert db.migrate(conn, path, "notes", [NOTES_V1, NOTES_V2]) == 2
        assert db.migrate(conn, path, "notes", [NOTES_V1, NOTES_V2]) == 2
        assert conn.execute("SELECT text, pinned FROM notes").fetchall() == [("kept", 0)]
        # Another store in the same file keeps its own version.
        assert db.schema_version(conn, "chats") == 0
    finally:
        conn.close()


def test_a_failed_migration_changes_nothing_and_a_backup_was_taken_first(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = db.connect(path)
    try:
        db.migrate(conn, path, "notes", [NOTES_V1])
        conn.execute("INSERT INTO notes (text) VALUES ('precious')")
        broken = db.Migration(
            2, ("CREATE TABLE tags (name TEXT)", "ALTER TABLE no_such_table ADD COLUMN x")
        )
        with pytest.raises(StorageError, match="cannot migrate the notes tables"):
            db.migrate(conn, path, "notes", [NOTES_V1, broken])

        assert db.schema_version(conn, "notes") == 1
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert "tags" not in tables  # the first statement was rolled back with the second
    finally:
        conn.close()

    backup = tmp_path / "h.sqlite3.notes-v1.bak"
    with sqlite3.connect(backup) as copy:
        assert copy.execute("SELECT text FROM notes").fetchall() == [("precious",)]


def test_a_database_from_a_newer_homefire_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = db.connect(path)
    try:
        db.migrate(conn, path, "notes", [NOTES_V1, NOTES_V2])
        with pytest.raises(StorageError, match="newer Homefire"):
            db.migrate(conn, path, "notes", [NOTES_V1])
    finally:
        conn.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is a text file, not SQLite\n" * 64)
    with pytest.raises(StorageError, match="cannot be used"):
        db.connect(path)


def test_migrations_out_of_order_are_a_programming_error(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = db.connect(path)
    try:
        with pytest.raises(ValueError, match="out of order"):
            db.migrate(conn, path, "notes", [NOTES_V2])
    finally:
        conn.close()
