"""The Telegram channel: webhook or long polling in, Bot API out.

Inbound, ``handle_webhook`` checks the secret-token header in constant time and parses the
update without any network I/O; ``listen`` long-polls ``getUpdates`` instead (mode
``polling``) and confirms an update's offset only after ``ingest`` stored it. Outbound,
``send`` renders HTML that always parses, splits long answers (each part sent once, via
the delivery ledger), paces sends through limits shared in Redis and follows supergroup
migrations; ``open_stream`` streams drafts (private chats) or throttled edits (groups) that
a re-run continues; ``typing_indicator`` keeps "typing…" up while a turn runs. See
docs/channels/telegram.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from botcore.channel import (
    Accepted,
    AdapterDeps,
    IngestFn,
    MessageStream,
    Rejected,
    WebhookOutcome,
    WebhookRequest,
)
from botcore.errors import ChannelError, ChannelRateLimited, ConfigError, SignatureError
from botcore.ledger import DeliveryLedger
from botcore.message import (
    ConversationKey,
    InboundMessage,
    OutboundMessage,
    Segment,
    SendResult,
)
from botcore.settings import BotConfig

from ._format import escape, to_parts
from ._parse import BotIdentity, parse_update
from ._stream import DraftStream, EditStream, StreamTarget
from .api import TelegramClient, with_migration
from .crypto import verify_secret_token
from .errors import CHANNEL, TelegramAuthError, TelegramError
from .models import InlineKeyboardButton, InlineKeyboardMarkup, SendMessage, TelegramConfig, Update

__all__ = ["TelegramAdapter"]

log = logging.getLogger(__name__)
MAX_BODY = 1_048_576
#: Seconds between ``sendChatAction`` calls (the action shows for ≤ 5 s).
TYPING_INTERVAL = 4.5
Call = Callable[[int], Awaitable[dict[str, Any]]]


def keyboard(buttons: tuple[tuple[str, str], ...]) -> InlineKeyboardMarkup | None:
    """One inline button per row: ``(label, value)`` sends ``value`` back as callback data
    (1-64 bytes); a value that is an https URL opens it instead."""
    if not buttons:
        return None
    rows = []
    for label, value in buttons:
        if value.startswith("https://"):
            rows.append((InlineKeyboardButton(text=label, url=value),))
        elif 1 <= len(value.encode()) <= 64:
            rows.append((InlineKeyboardButton(text=label, callback_data=value),))
        else:
            raise TelegramError(f"button {label!r}: callback data must be 1-64 bytes")
    return InlineKeyboardMarkup(inline_keyboard=tuple(rows))


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class _Delivery:
    """One outbound message's target, which may move once (supergroup migration)."""

    def __init__(self, chat_id: int, thread: int | None) -> None:
        self.chat_id = chat_id
        self.thread = thread
        self.ids: list[int] = []
        self.first_chat = chat_id


class TelegramAdapter:
    """Telegram Bot API adapter (see the module docstring)."""

    channel: ClassVar[str] = CHANNEL
    config_model: ClassVar[type[BaseModel]] = TelegramConfig

    def __init__(self, bot: BotConfig, deps: AdapterDeps) -> None:
        self.config = bot.channel_options(TelegramConfig)
        self.bot = bot
        self.deps = deps
        self.me = BotIdentity(bot.id, self.config.bot_username, self.config.bot_user_id)
        self.client = TelegramClient(deps.http, self.config.api_base,
                                     self.config.token.get_secret_value(), bot.id,
                                     deps.redis, deps.keys)
        self.ledger = DeliveryLedger(deps.redis, deps.keys, CHANNEL)
        self.clock: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.stream_interval = 1.0
        self.backoff = (1.0, 60.0)

    # --- lifecycle ------------------------------------------------------------------------

    async def startup(self) -> None:
        """Check the token and username with ``getMe``; in webhook mode with a
        ``webhook_url``, register it (``setWebhook`` with the secret and update types)."""
        try:
            me = await self.client.get_me()
        except TelegramAuthError:
            raise self._token_refused() from None
        actual = str(me.get("username", ""))
        if actual.lower() != self.me.username:
            raise ConfigError(f"bots.{self.bot.id}.bot_username", f"'{actual}' (from getMe)",
                              repr(self.config.bot_username))
        secret = self.config.secret_token
        if self.config.mode == "webhook" and self.config.webhook_url and secret is not None:
            await self.client.set_webhook(self.config.webhook_url, secret.get_secret_value(),
                                          self.config.allowed_updates)

    def _token_refused(self) -> ConfigError:
        return ConfigError(f"bots.{self.bot.id}.token", "a token @BotFather issued",
                           "a token the Bot API refused")

    async def shutdown(self) -> None:
        """Nothing to close: the HTTP client belongs to the runtime."""

    # --- inbound --------------------------------------------------------------------------

    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Verify the secret header, parse one update. No network I/O."""
        if request.method.upper() != "POST":
            return Rejected(405, "method_not_allowed")
        secret = self.config.secret_token
        try:
            verify_secret_token(request.headers, secret.get_secret_value() if secret else None)
        except SignatureError as exc:
            return Rejected(exc.status, exc.reason)
        if len(request.body) > MAX_BODY:
            return Rejected(413, "body_too_large")
        try:
            payload = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return Rejected(400, "malformed_json")
        if not isinstance(payload, dict) or not isinstance(payload.get("update_id"), int):
            return Rejected(400, "not_an_update")
        return Accepted(self._parse(payload))

    def _parse(self, payload: dict[str, Any]) -> tuple[InboundMessage, ...]:
        try:
            update = Update.model_validate(payload)
        except ValidationError:
            # Authentic but not in the shape we model: drop it rather than have Telegram
            # re-deliver it (and hold back the updates after it).
            log.warning("telegram update %s ignored: unexpected shape", payload["update_id"])
            return ()
        return parse_update(update, self.me, payload)

    async def listen(self, ingest: IngestFn) -> None:
        """Long-poll ``getUpdates`` until cancelled (mode ``polling``).

        The offset that confirms an update is sent only after ``ingest`` returned for it,
        so an update whose ingest failed is fetched again. Errors back off exponentially
        (a 429 waits its ``retry_after``); a refused token stops with ConfigError.
        """
        if self.config.mode != "polling":
            raise ConfigError(f"bots.{self.bot.id}.mode", "'polling' to long-poll", "'webhook'")
        try:
            await self.client.delete_webhook()
        except TelegramAuthError:
            raise self._token_refused() from None
        offset: int | None = None
        delay = self.backoff[0]
        while True:
            try:
                for raw in await self.client.get_updates(
                        offset, self.config.poll_timeout, self.config.allowed_updates):
                    for message in self._parse(raw):
                        await ingest(message)
                    offset = int(raw["update_id"]) + 1
            except TelegramAuthError:
                raise self._token_refused() from None
            except Exception as exc:
                wait = exc.retry_after if isinstance(exc, ChannelRateLimited) else delay
                log.warning("telegram polling error %s; retrying in %.1fs",
                            type(exc).__name__, wait)
                await self.sleep(wait)
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]

    # --- outbound -------------------------------------------------------------------------

    def _where(self, conversation: ConversationKey, context: Mapping[str, Any]) -> _Delivery:
        chat_id = _int(context.get("chat_id")) or _int(conversation.chat_id)
        if chat_id is None:
            raise TelegramError(f"no numeric chat id for {conversation.id}")
        thread = _int(context.get("message_thread_id")) or _int(conversation.thread_id)
        return _Delivery(chat_id, thread)

    async def _once(self, message: OutboundMessage, index: int, where: _Delivery,
                    call: Call) -> None:
        """Deliver one part unless a previous run of this reply already did.

        The ledger keeps ``"<message_id>"``, or ``"<message_id>@<chat_id>"`` once the group
        moved to a supergroup, so a re-run sends its remaining parts to the new chat at once.
        """

        async def deliver() -> str:
            first = where.chat_id
            sent, where.chat_id = await with_migration(where.chat_id, call)
            message_id = str(sent["message_id"])
            return message_id if where.chat_id == first else f"{message_id}@{where.chat_id}"

        record = await self.ledger.part(message.idempotency_key, index, deliver)
        message_id, _, chat = record.partition("@")
        if chat:
            where.chat_id = int(chat)
        where.ids.append(int(message_id))

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text (split, HTML), then attachments; buttons go on the last message.

        Raises:
            ChannelError: a subclass from :mod:`adapters.telegram.api`.
        """
        where = self._where(message.conversation, message.context)
        markup = keyboard(message.buttons)
        count = len(message.attachments)
        media = [self._media_call(seg, where, markup if i == count - 1 else None)
                 for i, seg in enumerate(message.attachments)]
        await self._answer_pending_callback(message.context)
        parts = to_parts(message.text, message.format)
        reply = _int(message.reply_to)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1 and not media
            request = {"text": part, "message_thread_id": where.thread,
                       "reply_markup": markup if last else None,
                       "reply_parameters": {"message_id": reply} if index == 0 and reply else None}

            async def text_call(chat_id: int, request: dict[str, Any] = request,
                                ) -> dict[str, Any]:
                model = SendMessage.model_validate({**request, "chat_id": chat_id})
                return await self.client.send_message(model)

            await self._once(message, index, where, text_call)
        for offset, call in enumerate(media):
            await self._once(message, len(parts) + offset, where, call)
        extra: dict[str, Any] = {"chat_id": where.chat_id, "message_ids": where.ids}
        if where.chat_id != where.first_chat:
            extra["migrated_to_chat_id"] = where.chat_id
        return SendResult(message_id=str(where.ids[0]) if where.ids else None,
                          parts=len(where.ids), extra=extra)

    def _media_call(self, segment: Segment, where: _Delivery,
                    markup: InlineKeyboardMarkup | None) -> Call:
        ref = segment.file_id or segment.url
        if not ref:
            raise TelegramError(f"{segment.type} attachment needs a file_id or a url")
        method, field = ("sendPhoto", "photo") if segment.type == "image" else (
            "sendDocument", "document")
        caption = escape(segment.text) if segment.text and len(segment.text) <= 900 else None

        async def call(chat_id: int) -> dict[str, Any]:
            return await self.client.send_media(method, field, chat_id, str(ref),
                                                caption=caption, markup=markup,
                                                message_thread_id=where.thread)
        return call

    async def _answer_pending_callback(self, context: Mapping[str, Any]) -> None:
        query_id = context.get("callback_query_id")
        if query_id:
            await self.answer_callback(str(query_id))

    async def answer_callback(self, callback_query_id: str, text: str | None = None,
                              show_alert: bool = False) -> bool:
        """Answer a button press (best effort: an old or already answered query is not an
        error worth failing a reply for). Returns whether Telegram accepted it."""
        try:
            await self.client.answer_callback_query(callback_query_id, text, show_alert)
        except ChannelError as exc:
            log.info("telegram answerCallbackQuery failed: %s", type(exc).__name__)
            return False
        return True

    async def send_chat_action(self, message: InboundMessage | OutboundMessage,
                               action: str = "typing") -> None:
        """Show "typing…" (or another action) for ≤ 5 s in the message's chat; repeat every
        4-5 s while working."""
        context = message.platform if isinstance(message, InboundMessage) else message.context
        where = self._where(message.conversation, context)
        await self.client.send_chat_action(where.chat_id, action, where.thread)

    def typing_indicator(self, message: OutboundMessage, *, action: str = "typing",
                         interval: float = TYPING_INTERVAL,
                         ) -> contextlib.AbstractAsyncContextManager[None]:
        """Show "typing…" while a turn runs: ``async with adapter.typing_indicator(msg):``.

        Sends ``sendChatAction`` at once and every ``interval`` seconds (Telegram shows it
        for ≤ 5 s) until the block exits, then stops cleanly. A failed action (429, blocked
        bot, network) is logged at debug and never fails the turn; the block's own
        exceptions pass through unchanged.
        """
        return self._typing(message, action, interval)

    @contextlib.asynccontextmanager
    async def _typing(self, message: OutboundMessage, action: str,
                      interval: float) -> AsyncIterator[None]:
        try:
            where = self._where(message.conversation, message.context)
        except TelegramError as exc:
            log.debug("telegram typing indicator skipped: %s", exc)
            yield
            return
        task = asyncio.create_task(self._keep_typing(where, action, interval),
                                   name=f"telegram-typing-{where.chat_id}")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.wait((task,))  # never raises; an outer cancel still propagates

    async def _keep_typing(self, where: _Delivery, action: str, interval: float) -> None:
        while True:
            wait = interval
            try:
                await self.client.send_chat_action(where.chat_id, action, where.thread)
            except ChannelRateLimited as exc:
                wait = max(interval, exc.retry_after)
                log.debug("telegram sendChatAction throttled for %.1fs", exc.retry_after)
            except Exception as exc:  # cosmetic: never fail the turn for it
                log.debug("telegram sendChatAction failed: %s", type(exc).__name__)
            await asyncio.sleep(wait)

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """Drafts in private chats, throttled edits elsewhere (see ``_stream``)."""
        where = self._where(message.conversation, message.context)
        interval = self.stream_interval
        if where.chat_id < 0:  # edits count against the group's window: leave room for others
            limit, seconds = self.client.limits.per_group
            interval = max(interval, seconds / limit)
        target = StreamTarget(self.client, message, where.chat_id, where.thread, self.clock,
                              interval)
        target.on_start = lambda: self._answer_pending_callback(message.context)
        private = message.context.get("chat_type", "private" if where.chat_id > 0 else "group")
        if private == "private":
            return DraftStream(target, self.send, _draft_id(message.idempotency_key))
        return EditStream(target, self.send, keyboard(message.buttons), _int(message.reply_to),
                          self.ledger)


def _draft_id(idempotency_key: str) -> int:
    """A non-zero 31-bit draft id, stable for one reply."""
    if not idempotency_key:
        return secrets.randbelow(2**31 - 2) + 1
    return int(hashlib.sha256(idempotency_key.encode()).hexdigest()[:8], 16) % (2**31 - 1) + 1
