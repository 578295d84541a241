"""Chat history: conversations and messages in SQLite, replies checkpointed while they stream."""

from app.core.chats.conversation import ChatSettings, Conversation, Message, ReplyStats
from app.core.chats.prompting import generation_request
from app.core.chats.reply import ReplyWriter
from app.core.chats.store import ChatStore

__all__ = [
    "ChatSettings",
    "ChatStore",
    "Conversation",
    "Message",
    "ReplyStats",
    "ReplyWriter",
    "generation_request",
]
