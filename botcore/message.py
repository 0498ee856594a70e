"""The one message model every channel is turned into, and what goes back out.

Models are frozen pydantic models: they cross the queue as JSON (``model_dump(mode="json")``)
and are rebuilt in the worker with ``model_validate``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChannelId",
    "ChatType",
    "Citation",
    "ConversationKey",
    "EventType",
    "InboundMessage",
    "OutboundMessage",
    "Segment",
    "SegmentType",
    "SendResult",
    "Sender",
]


class ChannelId(StrEnum):
    """The built-in channel ids. Third-party adapters may use any other string."""

    WEB = "web"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"
    TELEGRAM = "telegram"


class EventType(StrEnum):
    """Event names every adapter uses where the platform has the event, so that one
    ``@app.event("card_action")`` works on every channel. The platform's own name is kept in
    ``event_data["native"]``; events without a common name keep their platform name."""

    CARD_ACTION = "card_action"    # a button on a card or keyboard was pressed
    MENU_CLICK = "menu_click"      # an app menu item was clicked
    ENTER_CHAT = "enter_chat"      # a user opened the chat with the bot
    MEMBER_JOINED = "member_joined"
    MEMBER_LEFT = "member_left"
    BOT_ADDED = "bot_added"        # the bot was added to a group
    BOT_REMOVED = "bot_removed"
    #: a message the bot cannot read (a file, a voice note without transcript...). If no
    #: ``@app.event("unsupported")`` handler takes it and the adapter put a polite answer in
    #: ``event_data["reply"]``, botcore sends that answer (through the durable pipeline).
    UNSUPPORTED = "unsupported"


ChatType = Literal["private", "group"]
SegmentType = Literal[
    "text", "mention", "image", "file", "voice", "video", "location", "link", "quote", "sticker",
    "card", "unknown",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ConversationKey(BaseModel):
    """Names one conversation: the unit of ordering, sessions and the inbox.

    Groups are shared by their members (``user_id`` is ``None``); a platform that scopes
    conversations by thread or by user sets ``thread_id`` / ``user_id``.

    Example:
        >>> ConversationKey(channel="web", bot_id="demo", chat_id="c1").id
        'web:demo:c1'
    """

    model_config = _FROZEN

    channel: str
    bot_id: str
    chat_id: str
    thread_id: str | None = None
    user_id: str | None = None

    @property
    def id(self) -> str:
        """A stable string id, used in every Redis key and as the LangGraph thread id."""
        parts = [self.channel, self.bot_id, self.chat_id]
        if self.thread_id:
            parts.append(f"t={self.thread_id}")
        if self.user_id:
            parts.append(f"u={self.user_id}")
        return ":".join(parts)

    @classmethod
    def parse(cls, value: str) -> ConversationKey:
        """Rebuild a key from :attr:`id`."""
        channel, bot_id, rest = value.split(":", 2)
        thread = user = None
        chat_parts = []
        for part in rest.split(":"):
            if part.startswith("t="):
                thread = part[2:]
            elif part.startswith("u="):
                user = part[2:]
            else:
                chat_parts.append(part)
        return cls(channel=channel, bot_id=bot_id, chat_id=":".join(chat_parts),
                   thread_id=thread, user_id=user)


class Sender(BaseModel):
    """Who sent a message."""

    model_config = _FROZEN

    id: str
    name: str | None = None
    is_bot: bool = False


class Segment(BaseModel):
    """One part of a message beyond its plain text: a mention, an image, a file, a quote..."""

    model_config = _FROZEN

    type: SegmentType
    text: str | None = None
    user_id: str | None = None
    url: str | None = None
    file_id: str | None = None
    name: str | None = None
    mime_type: str | None = None
    data: Mapping[str, Any] = Field(default_factory=dict)


class InboundMessage(BaseModel):
    """A message or event received from a channel, in the one shape every handler sees.

    Attributes:
        event_id: the platform's id for this delivery; the dedupe key is built from it.
        message_id: the platform's message id (what a reply quotes), if any.
        kind: ``message`` for something a person wrote, ``event`` for the rest
            (member joined, card button pressed, ...); ``event_type`` names the event.
        text: the plain text, with the bot's own @-mention removed.
        mentioned: the bot was @-mentioned (always true in private chats).
        platform: what the adapter needs later to answer (session webhook, response URL...).
        raw: the platform payload, kept for debugging only; handlers must not rely on it.
    """

    model_config = _FROZEN

    channel: str
    bot_id: str
    conversation: ConversationKey
    event_id: str
    message_id: str | None = None
    kind: Literal["message", "event"] = "message"
    event_type: str | None = None
    chat_type: ChatType = "private"
    sender: Sender
    text: str = ""
    segments: tuple[Segment, ...] = ()
    mentioned: bool = False
    reply_to: str | None = None
    timestamp: float = Field(default_factory=time.time)
    event_data: Mapping[str, Any] = Field(default_factory=dict)
    platform: Mapping[str, Any] = Field(default_factory=dict)
    raw: Mapping[str, Any] | None = None

    @property
    def dedupe_key(self) -> str:
        """``{channel}:{bot_id}:{event_id}``: the same delivery always gives the same key."""
        return f"{self.channel}:{self.bot_id}:{self.event_id}"

    @property
    def is_group(self) -> bool:
        """True in group chats."""
        return self.chat_type == "group"


class Citation(BaseModel):
    """A source an answer is based on (a retrieved passage's document).

    Channels that can show sources apart from the text (the web chat, the OpenAI API) list
    them under the answer; the others may ignore them (RAG answers also name their sources in
    the text).

    Example:
        >>> Citation(title="Returns", source="policy.md", page=3).model_dump(exclude_none=True)
        {'title': 'Returns', 'source': 'policy.md', 'page': 3}
    """

    model_config = _FROZEN

    title: str
    source: str
    url: str | None = None
    page: int | None = None
    heading: str | None = None


class OutboundMessage(BaseModel):
    """A reply or a notification to send through a channel.

    Attributes:
        idempotency_key: the same key is never delivered twice (Feishu ``uuid``, or the
            ``sent:`` record elsewhere). Built from the inbound event and the reply's index.
        reply_to: the inbound message being answered, when the platform can quote it.
        context: the inbound message's ``platform`` data (session webhook, response URL...).
        citations: the sources of the answer, best first (optional; channels may ignore it).
    """

    model_config = _FROZEN

    conversation: ConversationKey
    text: str = ""
    format: Literal["text", "markdown"] = "text"
    attachments: tuple[Segment, ...] = ()
    card: Mapping[str, Any] | None = None
    buttons: tuple[tuple[str, str], ...] = ()
    reply_to: str | None = None
    idempotency_key: str = ""
    context: Mapping[str, Any] = Field(default_factory=dict)
    citations: tuple[Citation, ...] = ()

    @staticmethod
    def make_key(event_id: str, index: int) -> str:
        """A short, stable idempotency key for reply ``index`` of event ``event_id``."""
        digest = hashlib.sha256(f"{event_id}\x00{index}".encode()).hexdigest()
        return digest[:32]


class SendResult(BaseModel):
    """What a channel reports after a send."""

    model_config = _FROZEN

    message_id: str | None = None
    parts: int = 1
    extra: Mapping[str, Any] = Field(default_factory=dict)
