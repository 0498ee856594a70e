"""Streamed answers.

* Private chats: ``sendMessageDraft`` previews while the model writes, then ``sendMessage``
  with the complete text, as https://core.telegram.org/bots/api#sendmessagedraft requires
  ("the draft is ephemeral ... you must call sendMessage with the complete message").
* Elsewhere: the first chunk is sent with ``sendMessage``, then edited with
  ``editMessageText`` at most once per ``interval`` seconds; text that outgrows one message
  continues in a new one. "message is not modified" counts as success.

Previews never wait on a 429: the stream skips updates until ``retry_after`` has passed. The
final text is sent with retries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botcore.errors import ChannelError, ChannelRateLimited
from botcore.message import OutboundMessage, SendResult

from ._format import to_parts
from .api import TelegramClient, with_migration
from .models import EditMessageText, InlineKeyboardMarkup, SendMessage, SendMessageDraft

__all__ = ["DraftStream", "EditStream", "StreamTarget"]

log = logging.getLogger(__name__)
Markup = InlineKeyboardMarkup | None
SendFn = Callable[[OutboundMessage], Awaitable[SendResult]]


class StreamTarget:
    """Where a stream writes and how it paces itself."""

    def __init__(self, client: TelegramClient, template: OutboundMessage, chat_id: int,
                 thread: int | None, clock: Callable[[], float], interval: float) -> None:
        self.client = client
        self.template = template
        self.chat_id = chat_id
        self.thread = thread
        self.clock = clock
        self.interval = interval
        self.next_at = 0.0
        self.on_start: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        """Run ``on_start`` once (e.g. answer the button press that asked for this)."""
        hook, self.on_start = self.on_start, None
        if hook is not None:
            await hook()

    def due(self) -> bool:
        """True when the next preview may be sent."""
        return self.clock() >= self.next_at

    def sent(self) -> None:
        """Record a preview: the next one waits ``interval``."""
        self.next_at = self.clock() + self.interval

    def throttled(self, exc: ChannelRateLimited) -> None:
        """Record a 429: skip previews for ``retry_after`` seconds."""
        self.next_at = self.clock() + max(exc.retry_after, self.interval)


class DraftStream:
    """``sendMessageDraft`` previews, then ``sendMessage`` (via ``send``) at the end."""

    def __init__(self, target: StreamTarget, send: SendFn, draft_id: int) -> None:
        self._t = target
        self._send = send
        self._draft_id = draft_id
        self._enabled = True
        self.drafts = 0

    async def update(self, text: str) -> None:
        """Show the part being written as an animated draft."""
        if not self._enabled or not self._t.due():
            return
        parts = to_parts(text, self._t.template.format)
        if not parts:
            return
        request = SendMessageDraft(chat_id=self._t.chat_id, draft_id=self._draft_id,
                                   text=parts[-1], message_thread_id=self._t.thread)
        try:
            await self._t.client.send_message_draft(request)
        except ChannelRateLimited as exc:
            self._t.throttled(exc)
            return
        except ChannelError as exc:  # drafts unsupported here: finish() still sends it all
            log.warning("telegram draft preview disabled: %s", type(exc).__name__)
            self._enabled = False
            return
        self.drafts += 1
        self._t.sent()

    async def finish(self, text: str) -> SendResult:
        """Persist the answer: drafts are only a 30-second preview."""
        return await self._send(self._t.template.model_copy(update={"text": text}))


class EditStream:
    """The first chunk with ``sendMessage``, then throttled ``editMessageText``."""

    def __init__(self, target: StreamTarget, send: SendFn,
                 keyboard: InlineKeyboardMarkup | None, reply_to: int | None) -> None:
        self._t = target
        self._send = send
        self._keyboard = keyboard
        self._reply_to = reply_to
        self._ids: list[int] = []
        self._shown: list[str] = []

    async def update(self, text: str) -> None:
        """Edit the message(s) to show ``text``, at most once per interval."""
        if not self._t.due():
            return
        await self._t.start()
        try:
            await self._sync(to_parts(text, self._t.template.format), final=False)
        except ChannelRateLimited as exc:
            self._t.throttled(exc)
            return
        self._t.sent()

    async def _sync(self, parts: list[str], *, final: bool) -> None:
        for index, part in enumerate(parts):
            markup = self._keyboard if final and index == len(parts) - 1 else None
            if index < len(self._ids):
                if part != self._shown[index] or markup is not None:
                    await self._t.client.edit_message_text(
                        EditMessageText(chat_id=self._t.chat_id, message_id=self._ids[index],
                                        text=part, reply_markup=markup), retry=final)
                    self._shown[index] = part
                continue
            reply = {"message_id": self._reply_to} if index == 0 and self._reply_to else None

            async def send(chat_id: int, part: str = part, markup: Markup = markup,
                           reply: dict[str, int] | None = reply) -> dict[str, Any]:
                request = SendMessage.model_validate({
                    "chat_id": chat_id, "text": part, "reply_markup": markup,
                    "message_thread_id": self._t.thread, "reply_parameters": reply})
                return await self._t.client.send_message(request, retry=final)

            sent, self._t.chat_id = await with_migration(self._t.chat_id, send)
            self._ids.append(int(sent["message_id"]))
            self._shown.append(part)

    async def finish(self, text: str) -> SendResult:
        """Show the final text (with the buttons) and send any attachments."""
        if not self._ids:
            return await self._send(self._t.template.model_copy(update={"text": text}))
        await self._t.start()
        await self._sync(to_parts(text, self._t.template.format), final=True)
        if self._t.template.attachments:
            await self._send(self._t.template.model_copy(update={"text": "", "buttons": ()}))
        return SendResult(message_id=str(self._ids[0]), parts=len(self._ids),
                          extra={"chat_id": self._t.chat_id, "message_ids": self._ids})
