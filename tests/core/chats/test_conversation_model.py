"""Each conversation names its model: kept across a restart, added to an older history."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.chats.store import COMPONENT, MIGRATIONS, ChatStore
from app.core.errors import ConfigError
from app.core.storage import db


def test_the_picked_model_is_kept_across_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "homefire.sqlite3"
    store = ChatStore.open_at(path)
    picked = store.create_conversation()
    other = store.create_conversation()
    assert picked.model is None
    store.set_model(picked.id, "qwen2.5-coder-7b")
    store.close()

    again = ChatStore.open_at(path)
    try:
        assert again.conversation(picked.id).model == "qwen2.5-coder-7b"
        assert again.conversation(other.id).model is None
        assert {c.id: c.model for c in again.conversations()}[picked.id] == "qwen2.5-coder-7b"
        again.set_model(picked.id, None)  # back to whichever model is loaded
        assert again.conversation(picked.id).model is None
        with pytest.raises(ConfigError):
            again.set_model(999, "x")
    finally:
        again.close()


def test_a_history_from_before_the_model_column_keeps_its_conversations(tmp_path: Path) -> None:
    path = tmp_path / "homefire.sqlite3"
    conn = db.connect(path)
    try:
        db.migrate(conn, path, COMPONENT, MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO chat_conversations (title, created_at, updated_at) "
            "VALUES ('Old chat', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')"
        )
        conn.commit()
    finally:
        conn.close()

    store = ChatStore.open_at(path)
    try:
        (old,) = store.conversations()
        assert (old.title, old.model) == ("Old chat", None)
        store.set_model(old.id, "gemma-3-270m-q4_k_m")
        assert store.conversation(old.id).model == "gemma-3-270m-q4_k_m"
    finally:
        store.close()
