"""Streamed answers.

* Private chats: ``sendMessageDraft`` previews while the model writes, then ``sendMessage``
  with the complete text, as https://core.telegram.org/bots/api#sendmessagedraft requires
  ("the draft is ephemeral ... you must call sendMessage with the complete message").
* Elsewhere: the first chunk is sent with ``sendMessage``, then edited with
  ``editMessageText`` at most once per ``interval`` seconds; text that outgrows one message
  continues in a new one. "message is not modified" counts as success. The message ids and
  the text they show are kept in the delivery ledger, so a re-run of the turn (same
  idempotency key) keeps editing them instead of posting the answer a second time.

Previews never wait on a 429: the stream skips updates until ``retry_after`` has passed. The
final text is sent with retries.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botcore.errors import ChannelError, ChannelRateLimited
from botcore.ledger import DeliveryLedger
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
    """The first chunk with ``sendMessage``, then throttled ``editMessageText``.

    The message ids, their chat and the text each shows are kept in the delivery ledger
    under the reply's idempotency key after every send or edit: a re-run of the turn (same
    key) edits the messages the user already sees instead of starting new ones. Previews
    never shrink a message (text the message already starts with is skipped); ``finish``
    sets the exact final text and deletes messages a shorter re-run no longer needs.
    """

    def __init__(self, target: StreamTarget, send: SendFn,
                 keyboard: InlineKeyboardMarkup | None, reply_to: int | None,
                 ledger: DeliveryLedger) -> None:
        self._t = target
        self._send = send
        self._keyboard = keyboard
        self._reply_to = reply_to
        self._ledger = ledger
        self._key = target.template.idempotency_key
        self._ids: list[int] = []
        self._shown: list[str] = []
        self._restored = False
        self._sent_whole = False

    async def _restore(self) -> None:
        """Once: pick up what an earlier run of this reply left in the chat."""
        if self._restored:
            return
        self._restored = True
        handle = await self._ledger.stream_handle(self._key)
        if handle is None:
            # An earlier run may have sent the reply whole through ``send`` (no previews):
            # stream nothing, and let ``finish`` hand it to ``send``, which skips those parts.
            self._sent_whole = await self._ledger.delivered_parts(self._key, 1) > 0
            return
        try:
            ids = [int(i) for i in handle["message_ids"]]
            shown = [str(text) for text in handle["shown"]]
            chat_id = int(handle["chat_id"])
        except (KeyError, TypeError, ValueError):
            log.warning("telegram stream handle unreadable; starting a new message")
            return
        if len(ids) == len(shown):
            self._ids, self._shown, self._t.chat_id = ids, shown, chat_id

    async def _keep(self) -> None:
        await self._ledger.keep_stream_handle(self._key, {
            "chat_id": self._t.chat_id, "message_ids": self._ids, "shown": self._shown})

    async def update(self, text: str) -> None:
        """Edit the message(s) to show ``text``, at most once per interval."""
        await self._restore()
        if self._sent_whole or not self._t.due():
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
                shown = self._shown[index]
                stale = (part != shown or markup is not None) if final else (
                    not shown.startswith(part))
                if stale:
                    await self._edit(index, part, markup, final)
                continue
            await self._new(index, part, markup, final)

    async def _edit(self, index: int, part: str, markup: Markup, final: bool) -> None:
        await self._t.client.edit_message_text(
            EditMessageText(chat_id=self._t.chat_id, message_id=self._ids[index], text=part,
                            reply_markup=markup), retry=final)
        self._shown[index] = part
        await self._keep()

    async def _new(self, index: int, part: str, markup: Markup, final: bool) -> None:
        reply = {"message_id": self._reply_to} if index == 0 and self._reply_to else None

        async def send(chat_id: int) -> dict[str, Any]:
            request = SendMessage.model_validate({
                "chat_id": chat_id, "text": part, "reply_markup": markup,
                "message_thread_id": self._t.thread, "reply_parameters": reply})
            return await self._t.client.send_message(request, retry=final)

        sent, self._t.chat_id = await with_migration(self._t.chat_id, send)
        self._ids.append(int(sent["message_id"]))
        self._shown.append(part)
        await self._keep()

    async def _drop_extra(self, count: int) -> None:
        """Delete messages past the final ``count`` (left by a longer earlier run)."""
        while len(self._ids) > count:
            try:
                await self._t.client.delete_message(self._t.chat_id, self._ids[-1])
            except ChannelError as exc:  # e.g. already deleted by an admin: nothing to do
                log.info("telegram deleteMessage failed: %s", type(exc).__name__)
            self._ids.pop()
            self._shown.pop()
            await self._keep()

    async def finish(self, text: str) -> SendResult:
        """Show the final text (with the buttons) and send any attachments."""
        await self._restore()
        if not self._ids:
            return await self._send(self._t.template.model_copy(update={"text": text}))
        await self._t.start()
        parts = to_parts(text, self._t.template.format)
        await self._sync(parts, final=True)
        await self._drop_extra(len(parts))
        if self._t.template.attachments:
            await self._send(self._t.template.model_copy(update={"text": "", "buttons": ()}))
        return SendResult(message_id=str(self._ids[0]), parts=len(self._ids),
                          extra={"chat_id": self._t.chat_id, "message_ids": self._ids})
