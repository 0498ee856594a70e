"""Callback payloads → :class:`~botcore.message.InboundMessage` (no I/O).

Dedupe ids follow reliability.md 3.1: WeCom ids collide across apps and users, so the
``event_id`` is built from the agent id, the sender and the message id (events: the create
time, the event and its key instead of the message id).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from pydantic import ValidationError

from botcore.errors import SignatureError
from botcore.message import ConversationKey, InboundMessage, Segment, Sender

from .errors import CHANNEL
from .models import AiBotCallback, AppCallback

__all__ = [
    "build_aibot_message",
    "build_app_message",
    "parse_aibot",
    "parse_app",
    "parse_json",
    "parse_xml",
    "stream_id_for",
]

_LEADING_MENTION = re.compile(r"^\s*@\S+\s*")


#: WeCom event names → botcore's common names (botcore.message.EventType).
_COMMON_EVENTS = {"click": "menu_click", "enter_agent": "enter_chat",
                  "enter_chat": "enter_chat", "template_card_event": "card_action"}


#: (Event, ChangeType or UpdateDetail) → common name: members of the corp (change_contact,
#: document 90970) and of a customer group (change_external_chat update, 92130).
_MEMBER_EVENTS = {("change_contact", "create_user"): "member_joined",
                  ("change_contact", "delete_user"): "member_left",
                  ("change_external_chat", "add_member"): "member_joined",
                  ("change_external_chat", "del_member"): "member_left"}


def common_event(native: str, fields: Mapping[str, str] | None = None) -> str:
    """The common event name for a WeCom event (the native name when there is none).

    ``fields`` (the callback's XML children) tell member changes apart: ``change_contact``
    with ``ChangeType`` ``create_user`` / ``delete_user``, ``change_external_chat`` with
    ``UpdateDetail`` ``add_member`` / ``del_member``.
    """
    fields = fields or {}
    detail = fields.get("UpdateDetail") or fields.get("ChangeType") or ""
    return _MEMBER_EVENTS.get((native, detail)) or _COMMON_EVENTS.get(native, native)


def _event_id(agent: str, cb: AppCallback, fields: Mapping[str, str]) -> str:
    """Events have no MsgId; member and group changes add what tells two apart in a second."""
    extra = ":".join(fields[k] for k in ("ChangeType", "UpdateDetail", "UserID", "ChatId")
                     if fields.get(k))
    base = f"{agent}:{cb.from_user}:{cb.create_time}:{cb.event}:{cb.event_key or ''}"
    return f"{base}:{extra}" if extra else base


def _bad(reason: str) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=400)


def parse_xml(body: bytes | str) -> dict[str, str]:
    """A flat ``<xml>`` document → {child tag: text}. DTDs and entities are refused.

    Raises:
        SignatureError: 400 ``bad_xml``.
    """
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        raise _bad("bad_xml") from None
    if root.tag != "xml":
        raise _bad("bad_xml")
    return {child.tag: (child.text or "").strip() for child in root if isinstance(child.tag, str)}


def parse_json(body: bytes | str) -> dict[str, Any]:
    """A JSON object, or SignatureError 400 ``bad_json``."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise _bad("bad_json") from None
    if not isinstance(data, dict):
        raise _bad("bad_json")
    return data


def parse_app(fields: Mapping[str, str]) -> AppCallback:
    """Validate a decrypted app callback; SignatureError 400 ``bad_payload`` if incomplete."""
    try:
        return AppCallback.model_validate(dict(fields))
    except ValidationError:
        raise _bad("bad_payload") from None


def parse_aibot(data: Mapping[str, Any]) -> AiBotCallback:
    """Validate a decrypted AI bot callback; SignatureError 400 ``bad_payload``."""
    try:
        return AiBotCallback.model_validate(dict(data))
    except ValidationError:
        raise _bad("bad_payload") from None


# ---- self-built app ---------------------------------------------------------------------

def _media(kind: str) -> Callable[[AppCallback], Segment]:
    def build(cb: AppCallback) -> Segment:
        extra = {k: v for k in ("ThumbMediaId", "Format") if (v := cb.field(k))}
        return Segment(type=kind, file_id=cb.field("MediaId"), url=cb.field("PicUrl"),
                       name=cb.field("FileName") or cb.field("Title"), data=extra)
    return build


def _location(cb: AppCallback) -> Segment:
    data = {"latitude": cb.field("Location_X"), "longitude": cb.field("Location_Y"),
            "scale": cb.field("Scale")}
    return Segment(type="location", text=cb.field("Label"), data=data)


def _link(cb: AppCallback) -> Segment:
    return Segment(type="link", url=cb.field("Url"), name=cb.field("Title"),
                   text=cb.field("Description"), data={"pic_url": cb.field("PicUrl")})


_APP_SEGMENTS: dict[str, Callable[[AppCallback], Segment]] = {
    "image": _media("image"),
    "voice": _media("voice"),
    "video": _media("video"),
    "file": _media("file"),
    "location": _location,
    "link": _link,
}


def build_app_message(bot_id: str, default_agent: int | None, cb: AppCallback,
                      fields: Mapping[str, str]) -> InboundMessage:
    """One app callback → one InboundMessage (chat = the sender: app chats are private)."""
    agent = cb.agent_id or (str(default_agent) if default_agent is not None else "")
    is_event = cb.msg_type == "event"
    if is_event:
        event_id = _event_id(agent, cb, fields)
    else:
        event_id = f"{agent}:{cb.from_user}:{cb.msg_id or f'{cb.create_time}:{cb.msg_type}'}"
    # change_contact comes from "sys": its conversation is the member it is about.
    user = (fields.get("UserID") if cb.event == "change_contact" else None) or cb.from_user
    group = fields.get("ChatId") if cb.event == "change_external_chat" else None
    segments: tuple[Segment, ...] = ()
    text = cb.content or ""
    if cb.msg_type in _APP_SEGMENTS:
        segments = (_APP_SEGMENTS[cb.msg_type](cb),)
        text = cb.field("Recognition") or ""  # voice with speech recognition turned on
    return InboundMessage(
        channel=CHANNEL,
        bot_id=bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=bot_id, chat_id=group or user),
        event_id=event_id,
        message_id=None if is_event else cb.msg_id,
        kind="event" if is_event else "message",
        event_type=common_event(cb.event or "", fields) if is_event else None,
        chat_type="group" if group else "private",
        sender=Sender(id=cb.from_user),
        text="" if is_event else text,
        segments=segments,
        mentioned=True,
        timestamp=float(cb.create_time),
        event_data={**fields, "native": cb.event} if is_event else {},
        platform={"mode": "app", "touser": user, "agent_id": agent},
        raw=dict(fields),
    )


# ---- AI bot -----------------------------------------------------------------------------

def stream_id_for(bot_id: str, msgid: str) -> str:
    """The stream id answered for a message: stable, so a redelivery gets the same stream."""
    return hashlib.sha256(f"{bot_id}\x00{msgid}".encode()).hexdigest()[:32]


def _aibot_content(cb: AiBotCallback) -> tuple[str, tuple[Segment, ...]]:
    kind = cb.msgtype
    if kind == "text":
        return str(cb.part("text").get("content", "")), ()
    if kind == "voice":
        said = str(cb.part("voice").get("content", ""))
        return said, (Segment(type="voice", text=said),)
    if kind in ("image", "file"):
        return "", (Segment(type=kind, url=str(cb.part(kind).get("url", "")) or None),)
    if kind == "mixed":
        texts: list[str] = []
        segments: list[Segment] = []
        for item in cb.part("mixed").get("msg_item", []) or []:
            if not isinstance(item, dict):
                continue
            if item.get("msgtype") == "text":
                texts.append(str((item.get("text") or {}).get("content", "")))
            elif item.get("msgtype") == "image":
                segments.append(Segment(type="image", url=(item.get("image") or {}).get("url")))
        return "\n".join(texts), tuple(segments)
    return "", ()


def build_aibot_message(bot_id: str, cb: AiBotCallback, received_at: float) -> InboundMessage:
    """One AI bot callback (message or event, not a stream refresh) → InboundMessage."""
    is_group = cb.chattype == "group"
    is_event = cb.msgtype == "event"
    text, segments = ("", ()) if is_event else _aibot_content(cb)
    if is_group:
        text = _LEADING_MENTION.sub("", text, count=1)  # the bot is always @-mentioned first
    quote = cb.part("quote")
    if quote:
        quoted = str((quote.get("text") or {}).get("content", ""))
        segments = (*segments, Segment(type="quote", text=quoted or None, data=quote))
    chat_id = (cb.chatid or cb.sender.userid) if is_group else cb.sender.userid
    event = cb.part("event")
    platform: dict[str, Any] = {"mode": "aibot", "response_url": cb.response_url,
                                "chattype": cb.chattype, "chatid": cb.chatid,
                                "received_at": received_at}
    if not is_event:
        platform["stream_id"] = stream_id_for(bot_id, cb.msgid)
    return InboundMessage(
        channel=CHANNEL,
        bot_id=bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=bot_id, chat_id=chat_id),
        event_id=f"{cb.aibotid}:{cb.sender.userid}:{cb.msgid}",
        message_id=cb.msgid,
        kind="event" if is_event else "message",
        event_type=common_event(str(event.get("eventtype", ""))) or None if is_event else None,
        chat_type="group" if is_group else "private",
        sender=Sender(id=cb.sender.userid),
        text=text,
        segments=segments,
        mentioned=True,
        timestamp=float(cb.create_time or received_at),
        event_data=event,
        platform=platform,
        raw=cb.model_dump(mode="json", by_alias=True),
    )
