"""Test helpers shipped with botcore, for botcore's own tests and for bot authors' tests.

* :func:`make_inbound` builds a message without a platform.
* :class:`RecordingAdapter` is a channel adapter that records what it was asked to send.
* :func:`scripted_model` is LangChain's fake chat model answering from a script.
* :class:`~botcore.testing.stack.BotStack` runs the real pipeline: the web app in-process,
  a real Celery worker process, a real Redis.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any, ClassVar

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from pydantic import BaseModel, ConfigDict

from botcore.channel import (
    Accepted,
    AdapterDeps,
    MessageStream,
    WebhookOutcome,
    WebhookRequest,
)
from botcore.message import (
    ChatType,
    ConversationKey,
    InboundMessage,
    OutboundMessage,
    Sender,
    SendResult,
)
from botcore.settings import BotConfig

__all__ = ["RecordingAdapter", "make_inbound", "scripted_model"]

_ids = itertools.count(1)


def make_inbound(text: str = "hello", *, channel: str = "web", bot_id: str = "bot",
                 chat_id: str = "chat-1", sender: str = "user-1",
                 chat_type: ChatType = "private", mentioned: bool | None = None,
                 event_id: str | None = None, **fields: Any) -> InboundMessage:
    """An InboundMessage as an adapter would produce it."""
    number = next(_ids)
    return InboundMessage(
        channel=channel, bot_id=bot_id,
        conversation=ConversationKey(channel=channel, bot_id=bot_id, chat_id=chat_id),
        event_id=event_id or f"evt-{number}", message_id=f"msg-{number}",
        chat_type=chat_type, sender=Sender(id=sender, name=sender), text=text,
        mentioned=chat_type == "private" if mentioned is None else mentioned, **fields,
    )


class _RecordingConfig(BaseModel):
    model_config = ConfigDict(extra="allow")


class RecordingAdapter:
    """A channel adapter that accepts JSON messages and records sends in memory."""

    channel: ClassVar[str] = "recording"
    config_model: ClassVar[type[BaseModel]] = _RecordingConfig

    def __init__(self, bot: BotConfig | None = None, deps: AdapterDeps | None = None) -> None:
        self.bot = bot
        self.sent: list[OutboundMessage] = []

    async def startup(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Accept a JSON InboundMessage as the body."""
        return Accepted((InboundMessage.model_validate_json(request.body),), b"ok")

    async def send(self, message: OutboundMessage) -> SendResult:
        """Record the message."""
        self.sent.append(message)
        return SendResult(message_id=str(len(self.sent)))

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """No in-place updates: botcore buffers."""
        return None

    @property
    def texts(self) -> list[str]:
        """The texts sent so far."""
        return [message.text for message in self.sent]


def scripted_model(answers: Iterable[str | AIMessage]) -> GenericFakeChatModel:
    """A fake chat model that streams these answers, one per call, in order."""
    messages = [a if isinstance(a, AIMessage) else AIMessage(a) for a in answers]
    return GenericFakeChatModel(messages=iter(messages))
