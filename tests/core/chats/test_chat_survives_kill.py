"""A process killed mid-stream (SIGKILL) keeps the user's message and the checkpointed reply."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.chats.store import ChatStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

# The child drives its own clock so the checkpoint falls where the test expects.
CHILD = r"""
import sys
from pathlib import Path
from app.core.chats.reply import ReplyWriter
from app.core.chats.store import ChatStore

clock = [0.0]
store = ChatStore.open_at(Path(sys.argv[1]))
chat = store.create_conversation()
store.add_user_message(chat.id, "Tell me about llamas")
reply = ReplyWriter(store, store.begin_reply(chat.id, "tiny"), clock=lambda: clock[0])
clock[0] = 0.4; reply.append("Llamas are ")
clock[0] = 1.0; reply.append("South American ")      # checkpointed: 1 s since the start
clock[0] = 1.6; reply.append("camelids that hum.")   # in memory only: lost with the process
print("streaming", reply.checkpointed_chars, flush=True)
sys.stdin.read()  # stream "forever", until killed
"""


def test_user_message_and_checkpointed_reply_survive_sigkill(tmp_path: Path) -> None:
    db_path = tmp_path / "homefire.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if not line or line[0] != "streaming":
            pytest.fail(f"child failed: {child.communicate()[1]}")
        os.kill(child.pid, signal.SIGKILL)
        child.communicate()  # reap it, so its pid is gone
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()

    with sqlite3.connect(db_path) as conn:  # the kill left a hot WAL: SQLite recovers it
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = ChatStore.open_at(db_path)
    try:
        (chat,) = store.conversations()
        user, reply = store.messages(chat.id)
    finally:
        store.close()
    assert (user.role, user.content) == ("user", "Tell me about llamas")
    assert reply.content == "Llamas are South American "
    assert len(reply.content) == int(line[1])
    assert reply.status == "interrupted"


def test_a_reply_streaming_in_a_live_process_is_not_marked_interrupted(tmp_path: Path) -> None:
    store = ChatStore.open_at(tmp_path / "h.sqlite3")
    try:
        chat = store.create_conversation()
        message = store.begin_reply(chat.id, "m")
        assert store.close_interrupted() == 0
        assert store.message(message.id).status == "streaming"
    finally:
        store.close()
