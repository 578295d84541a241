"""An accidental Backspace or Delete never removes a conversation (LM Studio lost whole chats
to one stray Backspace): deleting takes the menu and a confirmation."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.gui.chat.conversation_list import ConversationList
from app.gui.desktop import Desktop


def test_backspace_or_delete_on_a_conversation_deletes_nothing(
    qtbot: QtBot, desktop: Desktop
) -> None:
    store = desktop.services.chats
    chat = store.create_conversation("keep me")
    store.add_user_message(chat.id, "precious")
    listing = ConversationList(store)
    qtbot.addWidget(listing)
    listing.refresh(chat.id)
    listing.show()
    listing.setFocus()
    for key in (Qt.Key.Key_Backspace, Qt.Key.Key_Delete):
        qtbot.keyClick(listing, key)
        qtbot.keyClick(listing, key, Qt.KeyboardModifier.ControlModifier)
        qtbot.keyClick(listing, key, Qt.KeyboardModifier.ShiftModifier)
    assert listing.ids() == [chat.id]
    assert [m.content for m in store.messages(chat.id)] == ["precious"]
