"""A disk that fills while the chat history is saved: a clear error, the earlier history intact.

RLIMIT_FSIZE in a child process gives SQLite a real write failure (EFBIG, as a full disk gives
ENOSPC) without filling this machine's disk.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from app.core.chats.store import ChatStore

CHILD = textwrap.dedent(
    """
    import resource, sys
    from pathlib import Path
    from app.core.chats.store import ChatStore
    from app.core.errors import StorageError

    db = Path(sys.argv[1])
    store = ChatStore.open_at(db)
    chat = store.create_conversation("kept")
    store.add_user_message(chat.id, "written before the disk filled")
    limit = 256 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        for _ in range(10_000):
            store.add_user_message(chat.id, "x" * 4096)
    except StorageError as exc:
        print("full:", exc.user_message)
    else:
        sys.exit("the disk never filled")
    # Still running, and still reading what was saved.
    print("readable:", len(store.messages(chat.id)) >= 1)
    store.close()
    """
)


def test_disk_full_while_saving_shows_an_error_and_keeps_earlier_history(
    tmp_path: Path,
) -> None:
    db = tmp_path / "homefire.sqlite3"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[3],
    )
    assert child.returncode == 0, child.stderr
    assert "full: cannot write the chat history" in child.stdout
    assert "readable: True" in child.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = ChatStore.open_at(db)
    try:
        [chat] = store.conversations()
        first = store.messages(chat.id)[0]
        assert first.content == "written before the disk filled"
        assert all(m.content in (first.content, "x" * 4096) for m in store.messages(chat.id))
    finally:
        store.close()


def test_one_corrupt_row_is_shown_not_hidden_and_nothing_is_deleted(tmp_path: Path) -> None:
    db = tmp_path / "homefire.sqlite3"
    store = ChatStore.open_at(db)
    chat = store.create_conversation("mine")
    store.add_user_message(chat.id, "first")
    store.add_user_message(chat.id, "second")
    store.close()
    with sqlite3.connect(db) as conn:  # what a bad disk sector or a foreign tool leaves
        conn.execute("UPDATE chat_messages SET created_at = 'garbage', stats = '{' WHERE id = 1")
        conn.execute("UPDATE chat_conversations SET updated_at = '' WHERE id = ?", (chat.id,))
    store = ChatStore.open_at(db)
    try:
        [kept] = store.conversations()
        assert [m.content for m in store.messages(kept.id)] == ["first", "second"]
    finally:
        store.close()
