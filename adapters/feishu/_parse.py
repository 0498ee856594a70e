"""Turn a decrypted, authenticated Feishu event into InboundMessage objects.

Shared by the webhook and the long connection, so that both paths see the same messages.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botcore.message import ConversationKey, InboundMessage, Segment, SegmentType, Sender

from .errors import CHANNEL
from .models import EventEnvelope

__all__ = ["HANDLED_EVENT_TYPES", "ParseContext", "message_event_id", "parse_event",
           "post_to_text"]

_MEDIA: dict[str, tuple[SegmentType, str]] = {  # message_type -> (segment type, key field)
    "image": ("image", "image_key"),
    "file": ("file", "file_key"),
    "audio": ("voice", "file_key"),
    "media": ("video", "file_key"),
    "sticker": ("sticker", "file_key"),
}


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What parsing needs to know about the bot."""

    bot_id: str
    bot_open_id: str | None = None
    bot_name: str | None = None


def _d(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def parse_event(env: EventEnvelope, raw: Mapping[str, Any],
                ctx: ParseContext) -> tuple[InboundMessage, ...]:
    """Messages carried by one event; empty for authentic events the bot does not handle."""
    if env.header is not None:
        if env.event_type == "im.message.receive_v1":
            return (_message_v2(env.header.event_id, env.event, raw, ctx),)
        if env.event_type == "card.action.trigger":
            return (_card_action(env.header.event_id, env.event, raw, ctx),)
        if env.event_type in _CHAT_EVENTS:
            return (_chat_event(env.header.event_id, env.event_type, env.event, raw, ctx),)
        return ()
    if env.uuid and env.event_type == "message":
        return (_message_v1(env.uuid, env.event, raw, ctx),)
    return ()


def message_event_id(message_id: str, delivery_id: str) -> str:
    """The ``event_id`` of a message: ``msg:<message_id>`` (the dedupe key covers the
    message, so the same message redelivered under a new event_id or uuid, or over both
    the webhook and the long connection, is stored once); the delivery id without one."""
    return f"msg:{message_id}" if message_id else delivery_id


def _is_bot(mention: Mapping[str, Any], ctx: ParseContext) -> bool:
    """Is this mention the bot? By open_id, else by display name, else a best guess.

    The guess (the bot's open_id is neither configured nor looked up yet): a mention whose
    ``mentioned_type`` is ``"bot"``; without that field, a mention with no ``user_id``
    (only people have one). It may take another bot's mention for ours, never miss ours.
    """
    ident = _d(mention.get("id"))
    if ctx.bot_open_id:
        return _s(ident.get("open_id")) == ctx.bot_open_id
    if ctx.bot_name:
        return _s(mention.get("name")) == ctx.bot_name
    kind = mention.get("mentioned_type")
    if isinstance(kind, str) and kind:
        return kind == "bot"
    return bool(ident) and not _s(ident.get("user_id"))


def _apply_mentions(text: str, mentions: list[Any],
                    ctx: ParseContext) -> tuple[str, bool, list[Segment]]:
    """Remove the @bot placeholders, spell other ``@_user_N`` keys as ``@name``."""
    hit = False
    segments: list[Segment] = []
    for item in mentions:
        mention = _d(item)
        key, name = _s(mention.get("key")), _s(mention.get("name"))
        is_bot = _is_bot(mention, ctx)
        hit = hit or is_bot
        segments.append(Segment(type="mention", text=name or None,
                                user_id=_s(_d(mention.get("id")).get("open_id")) or None,
                                data={"key": key, "is_bot": is_bot}))
        if key:  # the bot's own @ goes, with one space after it
            spoken = "" if is_bot else f"@{name}"
            text = re.sub(re.escape(key) + (r"[ \t]?" if is_bot else ""),
                          lambda _, s=spoken: s, text)  # type: ignore[misc]
    return text.strip(), hit, segments


def post_to_text(content: Mapping[str, Any]) -> tuple[str, list[Segment]]:
    """Flatten a ``post`` (rich text) body to plain text plus its images and videos.

    Accepts the received shape ``{"title", "content": [[...]]}`` and the localized
    ``{"zh_cn": {...}}`` shape used when sending.
    """
    body = content if "content" in content else next(
        (v for v in content.values() if isinstance(v, dict)), {})
    lines: list[str] = [_s(body.get("title"))] if body.get("title") else []
    segments: list[Segment] = []
    for paragraph in body.get("content") or []:
        parts: list[str] = []
        for node in paragraph if isinstance(paragraph, list) else []:
            el = _d(node)
            tag = el.get("tag")
            if tag in ("text", "a", "md", "code_block"):
                parts.append(_s(el.get("text")))
            elif tag == "at":
                parts.append(_s(el.get("user_id")) or f"@{_s(el.get('user_name'))}")
            elif tag == "emotion":
                parts.append(f":{_s(el.get('emoji_type'))}:")
            elif tag == "img":
                segments.append(Segment(type="image", file_id=_s(el.get("image_key")) or None))
            elif tag == "media":
                segments.append(Segment(type="video", file_id=_s(el.get("file_key")) or None))
        lines.append("".join(parts))
    return "\n".join(lines).strip(), segments


def _content(message_type: str, content: dict[str, Any],
             message_id: str) -> tuple[str, list[Segment]]:
    if message_type == "text":
        return _s(content.get("text")), []
    if message_type == "post":
        return post_to_text(content)
    if message_type in _MEDIA:
        seg_type, key = _MEDIA[message_type]
        return "", [Segment(type=seg_type, file_id=_s(content.get(key)) or None,
                            name=_s(content.get("file_name")) or None,
                            data={"message_id": message_id, "resource_type": (
                                "image" if message_type == "image" else "file")})]
    if message_type == "interactive":
        return "", [Segment(type="card", data=content)]
    return "", [Segment(type="unknown", data={"message_type": message_type})]


def _message_v2(event_id: str, event: dict[str, Any], raw: Mapping[str, Any],
                ctx: ParseContext) -> InboundMessage:
    message, sender = _d(event.get("message")), _d(event.get("sender"))
    message_id, chat_id = _s(message.get("message_id")), _s(message.get("chat_id"))
    chat_type = "private" if message.get("chat_type") == "p2p" else "group"
    try:
        content = _d(json.loads(_s(message.get("content")) or "{}"))
    except ValueError:
        content = {}
    text, segments = _content(_s(message.get("message_type")), content, message_id)
    text, hit, mentions = _apply_mentions(text, list(message.get("mentions") or []), ctx)
    thread_id = _s(message.get("thread_id")) or None
    sender_id = _d(sender.get("sender_id"))
    create_ms = _s(message.get("create_time"))
    return InboundMessage(
        channel=CHANNEL, bot_id=ctx.bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=ctx.bot_id, chat_id=chat_id,
                                     thread_id=thread_id),
        event_id=message_event_id(message_id, event_id), message_id=message_id or None,
        kind="message", event_type=_s(message.get("message_type")) or None,
        chat_type=chat_type,
        sender=Sender(id=_s(sender_id.get("open_id")) or _s(sender_id.get("user_id")),
                      is_bot=sender.get("sender_type") == "app"),
        text=text, segments=(*mentions, *segments),
        mentioned=chat_type == "private" or hit,
        reply_to=_s(message.get("parent_id")) or None,
        timestamp=int(create_ms) / 1000 if create_ms.isdigit() else time.time(),
        platform={"chat_id": chat_id, "message_id": message_id, "thread_id": thread_id,
                  "root_id": _s(message.get("root_id")) or None,
                  "chat_type": _s(message.get("chat_type")), "receive_id_type": "chat_id",
                  "delivery_id": event_id},
        raw=dict(raw),
    )


#: Feishu chat events → botcore's common names (botcore.message.EventType).
_CHAT_EVENTS = {
    "im.chat.member.user.added_v1": "member_joined",
    "im.chat.member.user.deleted_v1": "member_left",
    "im.chat.member.user.withdrawn_v1": "member_left",
    "im.chat.member.bot.added_v1": "bot_added",
    "im.chat.member.bot.deleted_v1": "bot_removed",
    "im.chat.access_event.bot_p2p_chat_entered_v1": "enter_chat",
}

#: Schema 2.0 event types :func:`parse_event` turns into messages (card actions, a
#: callback, come apart); the long connection registers exactly these.
HANDLED_EVENT_TYPES: tuple[str, ...] = ("im.message.receive_v1", *_CHAT_EVENTS)


def _open_id(value: Any) -> str:
    return _s(_d(value).get("open_id")) or _s(_d(value).get("user_id"))


def _chat_event(event_id: str, native: str, event: dict[str, Any], raw: Mapping[str, Any],
                ctx: ParseContext) -> InboundMessage:
    """Members joined or left, the bot was added or removed, a user opened the p2p chat."""
    chat_id = _s(event.get("chat_id"))
    users = [{"open_id": _open_id(user.get("user_id")), "name": _s(user.get("name"))}
             for user in event.get("users") or [] if isinstance(user, dict)]
    private = native.startswith("im.chat.access_event")
    return InboundMessage(
        channel=CHANNEL, bot_id=ctx.bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=ctx.bot_id, chat_id=chat_id),
        event_id=event_id, kind="event", event_type=_CHAT_EVENTS[native],
        chat_type="private" if private else "group",
        sender=Sender(id=_open_id(event.get("operator_id"))), mentioned=True,
        event_data={"native": native, "users": users, "chat_name": _s(event.get("name"))},
        platform={"chat_id": chat_id, "receive_id_type": "chat_id"},
        raw=dict(raw),
    )


def _card_action(event_id: str, event: dict[str, Any], raw: Mapping[str, Any],
                 ctx: ParseContext) -> InboundMessage:
    context, action = _d(event.get("context")), _d(event.get("action"))
    operator = _d(event.get("operator"))
    chat_id, message_id = _s(context.get("open_chat_id")), _s(context.get("open_message_id"))
    data = {k: action[k] for k in ("value", "tag", "option", "name", "form_value", "checked")
            if k in action}
    return InboundMessage(
        channel=CHANNEL, bot_id=ctx.bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=ctx.bot_id, chat_id=chat_id),
        event_id=event_id, message_id=message_id or None, kind="event",
        event_type="card_action",
        sender=Sender(id=_s(operator.get("open_id")) or _s(operator.get("user_id"))),
        mentioned=True, reply_to=message_id or None,
        event_data={**data, "open_message_id": message_id, "native": "card.action.trigger"},
        platform={"chat_id": chat_id, "message_id": message_id, "receive_id_type": "chat_id"},
        raw=dict(raw),
    )


def _message_v1(uuid: str, event: dict[str, Any], raw: Mapping[str, Any],
                ctx: ParseContext) -> InboundMessage:
    chat_id, message_id = _s(event.get("open_chat_id")), _s(event.get("open_message_id"))
    chat_type = "group" if event.get("chat_type") == "group" else "private"
    text = _s(event.get("text_without_at_bot")) or _s(event.get("text"))
    return InboundMessage(
        channel=CHANNEL, bot_id=ctx.bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=ctx.bot_id, chat_id=chat_id),
        event_id=message_event_id(message_id, uuid), message_id=message_id or None,
        kind="message",
        event_type=_s(event.get("msg_type")) or None, chat_type=chat_type,
        sender=Sender(id=_s(event.get("open_id"))), text=text.strip(),
        mentioned=chat_type == "private" or bool(event.get("is_mention")),
        reply_to=_s(event.get("parent_id")) or None,
        platform={"chat_id": chat_id, "message_id": message_id, "receive_id_type": "chat_id",
                  "delivery_id": uuid},
        raw=dict(raw),
    )
