"""The chat history store: what is sent is committed, edits and regenerations keep the old text."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.chats.conversation import DEFAULT_TITLE, ChatSettings, ReplyStats
from app.core.chats.reply import ReplyWriter
from app.core.chats.store import ChatStore
from app.core.errors import ConfigError, StorageError
from app.core.storage import db


@pytest.fixture
def store(tmp_path: Path) -> ChatStore:
    opened = ChatStore.open_at(tmp_path / "homefire.sqlite3")
    yield opened
    opened.close()


def test_database_runs_in_wal_with_full_sync(store: ChatStore) -> None:
    conn = db.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.schema_version(conn, "chats") == 1
    finally:
        conn.close()


def test_a_sent_message_is_on_disk_before_any_reply(store: ChatStore) -> None:
    chat = store.create_conversation()
    store.add_user_message(chat.id, "What is a GGUF file?")
    other = ChatStore.open_at(store.path)  # a second connection sees the committed row
    try:
        (message,) = other.messages(chat.id)
    finally:
        other.close()
    assert (message.role, message.content, message.status) == (
        "user",
        "What is a GGUF file?",
        "complete",
    )


def test_the_first_message_titles_the_conversation(store: ChatStore) -> None:
    chat = store.create_conversation()
    assert chat.title == DEFAULT_TITLE
    store.add_user_message(
        chat.id, "\n  Explain the KV cache in two sentences, please, for a new developer\n"
    )
    store.add_user_message(chat.id, "second message does not rename")
    title = store.conversation(chat.id).title
    assert title.startswith("Explain the KV cache")
    assert title.endswith("…")
    assert len(title) <= 49


def test_conversations_list_most_recent_first(store: ChatStore) -> None:
    first = store.create_conversation("first")
    second = store.create_conversation("second")
    store.add_user_message(first.id, "bump")
    assert [c.id for c in store.conversations()] == [first.id, second.id]


def test_settings_are_kept_per_conversation(store: ChatStore) -> None:
    a = store.create_conversation()
    b = store.create_conversation()
    store.update_settings(a.id, ChatSettings(system_prompt="Answer in French.", temperature=0.2))
    assert store.conversation(a.id).settings.system_prompt == "Answer in French."
    assert store.conversation(a.id).settings.temperature == 0.2
    assert store.conversation(b.id).settings == ChatSettings()


def test_settings_from_a_damaged_row_fall_back_to_defaults() -> None:
    raw = {"temperature": "hot", "top_k": 12, "unknown": 1, "seed": True}
    settings = ChatSettings.from_json(raw)
    assert settings.temperature == ChatSettings().temperature
    assert settings.top_k == 12
    assert settings.seed is None


def test_a_finished_reply_keeps_its_stats(store: ChatStore) -> None:
    chat = store.create_conversation()
    store.add_user_message(chat.id, "hi")
    reply = ReplyWriter(store, store.begin_reply(chat.id, "tiny"))
    reply.append("Hel")
    reply.append("lo")
    stats = ReplyStats(12, 2, 0.05, 30.0, "stop")
    done = reply.finish("complete", stats)
    assert (done.content, done.status, done.stats, done.model) == (
        "Hello",
        "complete",
        stats,
        "tiny",
    )


def test_edit_and_resend_supersedes_the_rest_without_deleting(store: ChatStore) -> None:
    chat = store.create_conversation()
    first = store.add_user_message(chat.id, "one")
    ReplyWriter(store, store.begin_reply(chat.id, "m")).finish("complete")
    second = store.add_user_message(chat.id, "two")
    ReplyWriter(store, store.begin_reply(chat.id, "m")).finish("complete")

    edited = store.edit_user_message(second.id, "two, edited")

    assert [m.content for m in store.messages(chat.id)] == ["one", "", "two, edited"]
    assert store.message(second.id).content == "two"  # still there, only superseded
    assert edited.id > second.id
    assert store.messages(chat.id)[0].id == first.id


def test_only_user_messages_can_be_edited(store: ChatStore) -> None:
    chat = store.create_conversation()
    store.add_user_message(chat.id, "q")
    reply = ReplyWriter(store, store.begin_reply(chat.id, "m")).finish("complete")
    with pytest.raises(ConfigError):
        store.edit_user_message(reply.id, "rewritten answer")


def test_regenerate_sets_the_last_reply_aside(store: ChatStore) -> None:
    chat = store.create_conversation()
    store.add_user_message(chat.id, "q")
    old = ReplyWriter(store, store.begin_reply(chat.id, "m"))
    old.append("first answer")
    old.finish("complete")
    store.supersede_from(old.message.id)
    assert [m.role for m in store.messages(chat.id)] == ["user"]
    assert store.message(old.message.id).content == "first answer"


def test_unknown_conversation_is_a_clear_error(store: ChatStore) -> None:
    with pytest.raises(ConfigError, match="no conversation 99"):
        store.add_user_message(99, "hello?")


def test_deleting_a_conversation_removes_its_messages(store: ChatStore) -> None:
    chat = store.create_conversation()
    store.add_user_message(chat.id, "q")
    store.delete_conversation(chat.id)
    assert store.conversations() == []
    assert store.messages(chat.id) == []


def test_a_closed_store_refuses_work_with_a_typed_error(tmp_path: Path) -> None:
    store = ChatStore.open_at(tmp_path / "h.sqlite3")
    store.close()
    with pytest.raises(StorageError):
        store.conversations()


def test_a_database_from_a_newer_homefire_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    ChatStore.open_at(path).close()
    conn = db.connect(path)
    conn.execute("UPDATE schema_versions SET version = 9 WHERE component = 'chats'")
    conn.close()
    with pytest.raises(StorageError, match="newer Homefire"):
        ChatStore.open_at(path)


def test_checkpoints_are_written_at_most_once_per_interval(store: ChatStore) -> None:
    chat = store.create_conversation()
    clock = [0.0]
    reply = ReplyWriter(
        store, store.begin_reply(chat.id, "m"), interval_s=1.0, clock=lambda: clock[0]
    )
    reply.append("a")
    clock[0] = 0.5
    reply.append("b")
    assert store.message(reply.message.id).content == ""  # nothing due yet
    clock[0] = 1.0
    reply.append("c")
    assert store.message(reply.message.id).content == "abc"
    assert store.message(reply.message.id).status == "streaming"
    clock[0] = 1.5
    reply.append("d")
    assert reply.checkpointed_chars == 3
