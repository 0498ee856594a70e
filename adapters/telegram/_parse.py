"""Bot API ``Update`` → :class:`~botcore.message.InboundMessage`.

Group semantics follow privacy mode (https://core.telegram.org/bots/features#privacy-mode):
the bot is addressed (``mentioned=True``) by a command at the start of the text (``/cmd`` or
``/cmd@this_bot``), an ``@this_bot`` mention, a reply to one of its messages, or a button
press; every message in a private chat is addressed. ``/cmd@other_bot`` is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botcore.message import ConversationKey, InboundMessage, Segment, SegmentType, Sender

from .errors import CHANNEL
from .models import (
    CallbackQuery,
    Chat,
    ChatMemberUpdated,
    Document,
    Message,
    MessageEntity,
    Update,
    User,
)

__all__ = ["BotIdentity", "parse_update"]


class BotIdentity:
    """Who "we" are: the bot's configured id, username and user id."""

    def __init__(self, bot_id: str, username: str, user_id: int) -> None:
        self.bot_id = bot_id
        self.username = username.lower()
        self.display = username
        self.user_id = user_id

    def is_me(self, user: User | None) -> bool:
        """True when ``user`` is this bot."""
        return user is not None and (
            user.id == self.user_id or (user.is_bot and (user.username or "").lower()
                                        == self.username))


def _u16_index(text: str, offset: int) -> int:
    """The Python index of UTF-16 code unit ``offset`` in ``text``."""
    units = 0
    for index, char in enumerate(text):
        if units >= offset:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text)


def _span(text: str, entity: MessageEntity) -> tuple[int, int]:
    start = _u16_index(text, entity.offset)
    end = start + len(text[start:].encode("utf-16-le")[: entity.length * 2].decode(
        "utf-16-le", errors="ignore"))
    return start, end


def _name(user: User) -> str:
    return " ".join(part for part in (user.first_name, user.last_name) if part) or (
        user.username or str(user.id))


def _mentions_me(entity: MessageEntity, piece: str, me: BotIdentity) -> bool:
    if entity.type == "mention":
        return piece[1:].lower() == me.username
    return entity.type == "text_mention" and me.is_me(entity.user)


def _read_text(text: str, entities: tuple[MessageEntity, ...],
               me: BotIdentity) -> tuple[str, list[Segment], bool, bool]:
    """(text without our mention, mention segments, addressed to us, for another bot)."""
    cuts: list[tuple[int, int, bool]] = []  # (start, end, also drop a following space)
    segments: list[Segment] = []
    addressed = other_bot = False
    for entity in entities:
        start, end = _span(text, entity)
        piece = text[start:end]
        if entity.type == "bot_command" and start == 0:
            _, _, suffix = piece.partition("@")
            if suffix and suffix.lower() != me.username:
                other_bot = True
            else:
                addressed = True
                if suffix:
                    cuts.append((start + piece.index("@"), end, False))
        elif _mentions_me(entity, piece, me):
            addressed = True
            cuts.append((start, end, True))
        elif entity.type in ("mention", "text_mention"):
            user_id = str(entity.user.id) if entity.user else None
            segments.append(Segment(type="mention", text=piece, user_id=user_id))
    for start, end, eat_space in sorted(cuts, reverse=True):
        if eat_space and end < len(text) and text[end] == " ":
            end += 1  # "hi @bot there" -> "hi there"
        text = text[:start] + text[end:]
    return text.strip(), segments, addressed, other_bot


def _media(msg: Message) -> list[Segment]:
    out: list[Segment] = []
    if msg.photo:
        big = max(msg.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        out.append(Segment(type="image", file_id=big.file_id,
                           data={"width": big.width, "height": big.height,
                                 "file_unique_id": big.file_unique_id}))
    files: tuple[tuple[SegmentType, Document | None], ...] = (
        ("file", msg.document), ("video", msg.video), ("file", msg.audio))
    for kind, doc in files:
        if doc is not None:
            out.append(Segment(type=kind, file_id=doc.file_id, name=doc.file_name,
                               mime_type=doc.mime_type, data={"file_size": doc.file_size}))
    if msg.voice is not None:
        out.append(Segment(type="voice", file_id=msg.voice.file_id, mime_type=msg.voice.mime_type,
                           data={"duration": msg.voice.duration}))
    if msg.sticker is not None:
        out.append(Segment(type="sticker", file_id=str(msg.sticker.get("file_id", "")),
                           text=msg.sticker.get("emoji")))
    return out


def _platform(chat: Chat, me: BotIdentity, thread: int | None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"chat_id": chat.id, "chat_type": chat.type,
                            "bot_username": me.display, "message_thread_id": thread}
    data.update({key: value for key, value in extra.items() if value is not None})
    return data


def _conversation(chat: Chat, me: BotIdentity, thread: int | None) -> ConversationKey:
    return ConversationKey(channel=CHANNEL, bot_id=me.bot_id, chat_id=str(chat.id),
                           thread_id=str(thread) if thread is not None else None)


def _sender(msg: Message) -> Sender:
    if msg.from_ is not None:
        return Sender(id=str(msg.from_.id), name=_name(msg.from_), is_bot=msg.from_.is_bot)
    chat = msg.sender_chat or msg.chat
    return Sender(id=str(chat.id), name=chat.title or chat.username)


def _from_message(update: Update, msg: Message, me: BotIdentity, edited: bool,
                  raw: Mapping[str, Any]) -> InboundMessage | None:
    body, entities = (msg.text, msg.entities) if msg.text is not None else (
        msg.caption or "", msg.caption_entities)
    text, segments, addressed, other_bot = _read_text(body, entities, me)
    if other_bot:
        return None
    reply = msg.reply_to_message
    if reply is not None:
        addressed = addressed or me.is_me(reply.from_)
        segments.append(Segment(type="quote", text=reply.text or reply.caption or "",
                                user_id=str(reply.from_.id) if reply.from_ else None,
                                data={"message_id": reply.message_id}))
    private = msg.chat.type == "private"
    thread = msg.message_thread_id if msg.is_topic_message else None
    return InboundMessage(
        channel=CHANNEL, bot_id=me.bot_id, conversation=_conversation(msg.chat, me, thread),
        event_id=str(update.update_id), message_id=str(msg.message_id),
        kind="event" if edited else "message",
        event_type="edited_message" if edited else None,
        chat_type="private" if private else "group", sender=_sender(msg), text=text,
        segments=(*segments, *_media(msg)), mentioned=private or addressed,
        reply_to=str(reply.message_id) if reply is not None else None,
        timestamp=float(msg.edit_date if edited and msg.edit_date else msg.date),
        platform=_platform(msg.chat, me, thread),
        raw=raw,
    )


def _from_callback(update: Update, query: CallbackQuery, me: BotIdentity,
                   raw: Mapping[str, Any]) -> InboundMessage:
    msg = query.message
    chat = msg.chat if msg is not None else Chat(id=query.from_.id, type="private")
    thread = msg.message_thread_id if msg is not None and msg.is_topic_message else None
    return InboundMessage(
        channel=CHANNEL, bot_id=me.bot_id, conversation=_conversation(chat, me, thread),
        event_id=str(update.update_id), message_id=str(msg.message_id) if msg else None,
        kind="event", event_type="card_action",
        chat_type="private" if chat.type == "private" else "group",
        sender=Sender(id=str(query.from_.id), name=_name(query.from_), is_bot=query.from_.is_bot),
        text=query.data or "", mentioned=True,
        event_data={"native": "callback_query", "data": query.data,
                    "callback_query_id": query.id,
                    "message_id": msg.message_id if msg else None,
                    "inline_message_id": query.inline_message_id},
        platform=_platform(chat, me, thread, callback_query_id=query.id),
        raw=raw,
    )


def _from_membership_message(update: Update, msg: Message, me: BotIdentity,
                             raw: Mapping[str, Any]) -> InboundMessage:
    """A service message: members joined (``new_chat_members``) or one left."""
    joined = bool(msg.new_chat_members)
    users = msg.new_chat_members if joined else (msg.left_chat_member,)
    return InboundMessage(
        channel=CHANNEL, bot_id=me.bot_id, conversation=_conversation(msg.chat, me, None),
        event_id=str(update.update_id), message_id=str(msg.message_id), kind="event",
        event_type="member_joined" if joined else "member_left",
        chat_type="private" if msg.chat.type == "private" else "group",
        sender=Sender(id=str(msg.from_.id) if msg.from_ else "",
                      name=_name(msg.from_) if msg.from_ else None),
        mentioned=True, timestamp=float(msg.date),
        event_data={"native": "new_chat_members" if joined else "left_chat_member",
                    "users": [{"id": str(u.id), "name": _name(u), "is_bot": u.is_bot}
                              for u in users if u is not None]},
        platform=_platform(msg.chat, me, None),
        raw=raw,
    )


def _membership_event(status: object) -> str:
    """``my_chat_member``: the bot's own membership changed."""
    return "bot_removed" if status in {"left", "kicked"} else "bot_added"


def _from_member(update: Update, change: ChatMemberUpdated, me: BotIdentity,
                 raw: Mapping[str, Any]) -> InboundMessage:
    return InboundMessage(
        channel=CHANNEL, bot_id=me.bot_id, conversation=_conversation(change.chat, me, None),
        event_id=str(update.update_id), kind="event",
        event_type=_membership_event(change.new_chat_member.get("status")),
        chat_type="private" if change.chat.type == "private" else "group",
        sender=Sender(id=str(change.from_.id), name=_name(change.from_)),
        timestamp=float(change.date),
        event_data={"native": "my_chat_member",
                    "old_status": change.old_chat_member.get("status"),
                    "new_status": change.new_chat_member.get("status"),
                    "chat_title": change.chat.title},
        platform=_platform(change.chat, me, None),
        raw=raw,
    )


def parse_update(update: Update, me: BotIdentity,
                 raw: Mapping[str, Any]) -> tuple[InboundMessage, ...]:
    """The messages of one update (``raw`` is its JSON, kept for debugging): none for update
    types botcore does not handle and for commands addressed to another bot."""
    found: InboundMessage | None = None
    if update.message is not None and (update.message.new_chat_members
                                       or update.message.left_chat_member):
        found = _from_membership_message(update, update.message, me, raw)
    elif update.message is not None:
        found = _from_message(update, update.message, me, False, raw)
    elif update.edited_message is not None:
        found = _from_message(update, update.edited_message, me, True, raw)
    elif update.callback_query is not None:
        found = _from_callback(update, update.callback_query, me, raw)
    elif update.my_chat_member is not None:
        found = _from_member(update, update.my_chat_member, me, raw)
    return (found,) if found is not None else ()
