"""Updates shaped as https://core.telegram.org/bots/api#update documents them."""

from __future__ import annotations

from typing import Any

from fake_telegram import BOT_USER

ALICE = {"id": 1111, "is_bot": False, "first_name": "Alice", "last_name": "Liddell",
         "username": "alice", "language_code": "en"}
PRIVATE = {"id": 1111, "first_name": "Alice", "username": "alice", "type": "private"}
GROUP = {"id": -1001234567890, "title": "Team", "type": "supergroup"}
FORUM = {"id": -1009876543210, "title": "Forum", "type": "supergroup", "is_forum": True}
OTHER_BOT = {"id": 555, "is_bot": True, "first_name": "Other", "username": "other_bot"}


def entity(kind: str, offset: int, length: int, **extra: Any) -> dict[str, Any]:
    """A MessageEntity (offsets in UTF-16 code units)."""
    return {"type": kind, "offset": offset, "length": length, **extra}


def message(text: str | None = None, *, chat: dict[str, Any] = PRIVATE, update_id: int = 10,
            message_id: int = 42, sender: dict[str, Any] = ALICE, key: str = "message",
            **fields: Any) -> dict[str, Any]:
    """An Update carrying one Message."""
    msg: dict[str, Any] = {"message_id": message_id, "from": sender, "chat": chat,
                           "date": 1_700_000_000, **fields}
    if text is not None:
        msg["text"] = text
    return {"update_id": update_id, key: msg}


def bot_message(text: str, message_id: int = 41, chat: dict[str, Any] = GROUP,
                ) -> dict[str, Any]:
    """A message the bot sent earlier (what a reply quotes)."""
    return {"message_id": message_id, "from": BOT_USER, "chat": chat, "date": 1_699_999_999,
            "text": text}


def callback_query(data: str, update_id: int = 20) -> dict[str, Any]:
    """A press on an inline button under one of the bot's messages."""
    return {"update_id": update_id, "callback_query": {
        "id": "4382bfdwdsb323b2d9", "from": ALICE, "chat_instance": "-8123",
        "message": bot_message("Pick one", chat=PRIVATE), "data": data}}


def my_chat_member(old: str = "left", new: str = "member", update_id: int = 30,
                   ) -> dict[str, Any]:
    """The bot was added to (or removed from) a group."""
    return {"update_id": update_id, "my_chat_member": {
        "chat": GROUP, "from": ALICE, "date": 1_700_000_100,
        "old_chat_member": {"status": old, "user": BOT_USER},
        "new_chat_member": {"status": new, "user": BOT_USER}}}
