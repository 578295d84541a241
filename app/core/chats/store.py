"""Chat history in SQLite: every message committed when sent, streaming replies checkpointed.

The design follows the failures other chat apps reported (docs/security.md): history never lives
only in memory, the user's message is committed before the model sees it, a streaming reply is
written as it grows (see :class:`~app.core.chats.reply.ReplyWriter`) and marked ``streaming``
until it ends, and a reply left ``streaming`` by a process that died is marked ``interrupted``
on the next start, its checkpointed text kept. Edit-and-resend and regenerate never delete: the
replaced messages are marked superseded, so nothing the user wrote is destroyed by a click.

One connection, guarded by a lock: the GUI thread reads and sends, the engine thread checkpoints.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from app.core.chats.conversation import (
    DEFAULT_TITLE,
    ChatSettings,
    Conversation,
    Message,
    MessageStatus,
    ReplyStats,
    title_from,
)
from app.core.engine.request import Role
from app.core.errors import ConfigError, StorageError
from app.core.storage import db
from app.core.storage.paths import AppPaths
from app.core.storage.writer_process import current_process, process_alive

log = logging.getLogger(__name__)

COMPONENT = "chats"
MIGRATIONS: tuple[db.Migration, ...] = (
    db.Migration(
        1,
        (
            """
            CREATE TABLE chat_conversations (
                id INTEGER PRIMARY KEY,
                title TEXT NOT NULL,
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                settings TEXT NOT NULL DEFAULT '{}'
            )
            """,
            """
            CREATE TABLE chat_messages (
                id INTEGER PRIMARY KEY,
                conversation_id INTEGER NOT NULL
                    REFERENCES chat_conversations (id) ON DELETE CASCADE,
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
                content TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN
                    ('complete', 'streaming', 'cancelled', 'interrupted', 'error')),
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                model TEXT,
                stats TEXT,
                error TEXT,
                superseded INTEGER NOT NULL DEFAULT 0,
                owner_pid INTEGER,
                owner_started REAL
            )
            """,
            "CREATE INDEX chat_messages_conversation ON chat_messages (conversation_id, id)",
            "CREATE INDEX chat_messages_streaming ON chat_messages (status) "
            "WHERE status = 'streaming'",
        ),
    ),
)

_MESSAGE_COLUMNS = "id, conversation_id, role, content, status, created_at, model, stats, error"


class ChatStore:
    """Open with :meth:`open` (Homefire's database) or :meth:`open_at`; close with :meth:`close`."""

    def __init__(self, db_path: Path) -> None:
        self._path = db_path
        self._lock = threading.Lock()
        self._pid, self._pid_started = current_process()
        self._conn = db.connect(db_path)
        try:
            db.migrate(self._conn, db_path, COMPONENT, MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise
        self._closed = False

    @classmethod
    def open(cls, paths: AppPaths) -> ChatStore:
        return cls.open_at(paths.database_file)

    @classmethod
    def open_at(cls, db_path: Path) -> ChatStore:
        store = cls(db_path)
        try:
            store.close_interrupted()
        except BaseException:
            store.close()
            raise
        return store

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # -- conversations -----------------------------------------------------------------------

    def create_conversation(
        self, title: str = DEFAULT_TITLE, settings: ChatSettings | None = None
    ) -> Conversation:
        now = _stamp(_now())
        raw = json.dumps((settings or ChatSettings()).to_json())
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO chat_conversations (title, created_at, updated_at, settings) "
                "VALUES (?, ?, ?, ?)",
                (title, now, now, raw),
            )
            conversation_id = int(cursor.lastrowid or 0)
        return self.conversation(conversation_id)

    def conversations(self) -> list[Conversation]:
        """Most recently active first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, title, created_at, updated_at, settings FROM chat_conversations "
                "ORDER BY updated_at DESC, id DESC"
            ).fetchall()
        return [_conversation(row) for row in rows]

    def conversation(self, conversation_id: int) -> Conversation:
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, title, created_at, updated_at, settings FROM chat_conversations "
                "WHERE id = ?",
                (conversation_id,),
            ).fetchone()
        if row is None:
            raise ConfigError(f"there is no conversation {conversation_id}")
        return _conversation(row)

    def rename(self, conversation_id: int, title: str) -> None:
        title = title.strip() or DEFAULT_TITLE
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute(
                "UPDATE chat_conversations SET title = ? WHERE id = ?", (title, conversation_id)
            )

    def update_settings(self, conversation_id: int, settings: ChatSettings) -> None:
        with self._write() as conn:
            self._require(conn, conversation_id)
            conn.execute(
                "UPDATE chat_conversations SET settings = ? WHERE id = ?",
                (json.dumps(settings.to_json()), conversation_id),
            )

    def delete_conversation(self, conversation_id: int) -> None:
        """Gone for good (messages too): the GUI asks for confirmation first."""
        with self._write() as conn:
            conn.execute("DELETE FROM chat_conversations WHERE id = ?", (conversation_id,))

    # -- messages ----------------------------------------------------------------------------

    def messages(self, conversation_id: int) -> list[Message]:
        """The conversation as it stands (superseded messages left out), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages "
                "WHERE conversation_id = ? AND superseded = 0 ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [_message(row) for row in rows]

    def message(self, message_id: int) -> Message:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM chat_messages WHERE id = ?", (message_id,)
            ).fetchone()
        if row is None:
            raise ConfigError(f"there is no message {message_id}")
        return _message(row)

    def add_user_message(self, conversation_id: int, content: str) -> Message:
        """Commit what the user sent, before any model sees it; titles a new conversation."""
        with self._write() as conn:
            self._require(conn, conversation_id)
            message_id = self._insert(conn, conversation_id, "user", content, "complete")
            conn.execute(
                "UPDATE chat_conversations SET title = ? WHERE id = ? AND title = ?",
                (title_from(content), conversation_id, DEFAULT_TITLE),
            )
        return self.message(message_id)

    def edit_user_message(self, message_id: int, content: str) -> Message:
        """Edit-and-resend: the old message and everything after it are superseded, not lost."""
        old = self.message(message_id)
        if old.role != "user":
            raise ConfigError("only a message you wrote can be edited and sent again")
        with self._write() as conn:
            self._supersede_from(conn, old)
            new_id = self._insert(conn, old.conversation_id, "user", content, "complete")
        return self.message(new_id)

    def supersede_from(self, message_id: int) -> None:
        """Regenerate: the reply (and anything after it) leaves the conversation, kept aside."""
        message = self.message(message_id)
        with self._write() as conn:
            self._supersede_from(conn, message)

    def begin_reply(self, conversation_id: int, model: str | None) -> Message:
        """An empty assistant message marked ``streaming``; a ReplyWriter fills it."""
        with self._write() as conn:
            self._require(conn, conversation_id)
            message_id = self._insert(
                conn, conversation_id, "assistant", "", "streaming", model=model
            )
        return self.message(message_id)

    def checkpoint_reply(self, message_id: int, content: str) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE chat_messages SET content = ?, updated_at = ? "
                "WHERE id = ? AND status = 'streaming'",
                (content, _stamp(_now()), message_id),
            )

    def finish_reply(
        self,
        message_id: int,
        content: str,
        status: MessageStatus,
        stats: ReplyStats | None = None,
        error: str | None = None,
    ) -> Message:
        if status == "streaming":
            raise ValueError("a finished reply cannot still be streaming")
        with self._write() as conn:
            conn.execute(
                "UPDATE chat_messages SET content = ?, status = ?, stats = ?, error = ?, "
                "updated_at = ?, owner_pid = NULL, owner_started = NULL WHERE id = ?",
                (
                    content,
                    status,
                    None if stats is None else json.dumps(stats.to_json()),
                    error,
                    _stamp(_now()),
                    message_id,
                ),
            )
        return self.message(message_id)

    def close_interrupted(self) -> int:
        """Mark replies left ``streaming`` by a process that has died; returns how many."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, owner_pid, owner_started FROM chat_messages WHERE status = 'streaming'"
            ).fetchall()
        dead = [
            int(row[0])
            for row in rows
            if row[1] is None or not process_alive(int(row[1]), float(row[2] or 0.0))
        ]
        if dead:
            with self._write() as conn:
                conn.executemany(
                    "UPDATE chat_messages SET status = 'interrupted', owner_pid = NULL, "
                    "owner_started = NULL WHERE id = ?",
                    [(message_id,) for message_id in dead],
                )
        return len(dead)

    # -- internals ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                with db.transaction(self._conn):
                    yield self._conn
            except sqlite3.Error as exc:
                raise StorageError(f"cannot write the chat history in {self._path}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._check_open()
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise StorageError(f"cannot read the chat history in {self._path}: {exc}") from exc

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("the chat history is closed")

    @staticmethod
    def _require(conn: sqlite3.Connection, conversation_id: int) -> None:
        row = conn.execute(
            "SELECT 1 FROM chat_conversations WHERE id = ?", (conversation_id,)
        ).fetchone()
        if row is None:
            raise ConfigError(f"there is no conversation {conversation_id}")

    def _insert(
        self,
        conn: sqlite3.Connection,
        conversation_id: int,
        role: Role,
        content: str,
        status: MessageStatus,
        model: str | None = None,
    ) -> int:
        now = _stamp(_now())
        streaming = status == "streaming"
        cursor = conn.execute(
            "INSERT INTO chat_messages (conversation_id, role, content, status, created_at, "
            "updated_at, model, owner_pid, owner_started) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conversation_id,
                role,
                content,
                status,
                now,
                now,
                model,
                self._pid if streaming else None,
                self._pid_started if streaming else None,
            ),
        )
        conn.execute(
            "UPDATE chat_conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
        )
        return int(cursor.lastrowid or 0)

    @staticmethod
    def _supersede_from(conn: sqlite3.Connection, message: Message) -> None:
        conn.execute(
            "UPDATE chat_messages SET superseded = 1 WHERE conversation_id = ? AND id >= ?",
            (message.conversation_id, message.id),
        )


_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP_FORMAT)


# Where a damaged time stamp sorts: first, and visibly odd, rather than hiding its row.
_DAMAGED_STAMP = datetime(1970, 1, 1, tzinfo=UTC)


def _parse(text: str) -> datetime:
    """A stored time stamp; a damaged one never hides its conversation or message."""
    try:
        return datetime.strptime(text, _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        log.warning("damaged time stamp %r in the chat history; shown as 1970", text[:40])
        return _DAMAGED_STAMP


def _conversation(row: tuple[object, ...]) -> Conversation:
    try:
        settings = ChatSettings.from_json(json.loads(str(row[4])))
    except ValueError:
        settings = ChatSettings()  # a damaged settings cell never hides the conversation
    return Conversation(
        id=int(row[0]),  # type: ignore[call-overload]
        title=str(row[1]),
        created_at=_parse(str(row[2])),
        updated_at=_parse(str(row[3])),
        settings=settings,
    )


def _message(row: tuple[object, ...]) -> Message:
    stats = None
    if row[7] is not None:
        try:
            stats = ReplyStats.from_json(json.loads(str(row[7])))
        except ValueError:
            stats = None
    return Message(
        id=int(row[0]),  # type: ignore[call-overload]
        conversation_id=int(row[1]),  # type: ignore[call-overload]
        role=str(row[2]),  # type: ignore[arg-type]
        content=str(row[3]),
        status=str(row[4]),  # type: ignore[arg-type]
        created_at=_parse(str(row[5])),
        model=None if row[6] is None else str(row[6]),
        stats=stats,
        error=None if row[8] is None else str(row[8]),
    )
