"""The conversations sidebar: newest first; rename and delete (with confirmation)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QWidget,
)

from app.core.chats.conversation import Conversation
from app.core.chats.store import ChatStore


class ConversationList(QListWidget):
    conversation_chosen = Signal(int)
    conversation_deleted = Signal(int)

    def __init__(self, store: ChatStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("conversationList")
        self._store = store
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._on_self_context_menu_requested)
        self.currentItemChanged.connect(self._on_self_current_item_changed)
        self._quiet = False
        # Long titles end in "…" rather than scrolling sideways.
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(False)
        self.setUniformItemSizes(True)

    def refresh(self, current: int | None) -> None:
        self._quiet = True
        try:
            self.clear()
            for conversation in self._store.conversations():
                item = QListWidgetItem(conversation.title)
                item.setData(Qt.ItemDataRole.UserRole, conversation.id)
                item.setToolTip(_tooltip(conversation))
                self.addItem(item)
                if conversation.id == current:
                    self.setCurrentItem(item)
        finally:
            self._quiet = False
        # Long titles end in "…" rather than scrolling sideways.
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setWordWrap(False)
        self.setUniformItemSizes(True)

    def ids(self) -> list[int]:
        return [int(self.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.count())]

    def _on_self_current_item_changed(self, item: QListWidgetItem | None, _old: object) -> None:
        if item is not None and not self._quiet:
            self.conversation_chosen.emit(int(item.data(Qt.ItemDataRole.UserRole)))

    def _on_self_context_menu_requested(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        conversation_id = int(item.data(Qt.ItemDataRole.UserRole))
        menu = QMenu(self)
        rename = menu.addAction("Rename…")
        delete = menu.addAction("Delete…")
        chosen = menu.exec(self.viewport().mapToGlobal(pos))
        if chosen is rename:
            title, ok = QInputDialog.getText(self, "Rename conversation", "Title", text=item.text())
            if ok:
                self._store.rename(conversation_id, title)
                self.refresh(conversation_id)
        elif chosen is delete:
            answer = QMessageBox.question(
                self,
                "Delete conversation",
                f"Delete “{item.text()}” and all its messages? This cannot be undone.",
            )
            if answer == QMessageBox.StandardButton.Yes:
                self._store.delete_conversation(conversation_id)
                self.conversation_deleted.emit(conversation_id)


def _tooltip(conversation: Conversation) -> str:
    local = conversation.updated_at.astimezone()
    return f"{conversation.title}\nlast message {local:%Y-%m-%d %H:%M}"
