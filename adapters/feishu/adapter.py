"""FeishuAdapter: Feishu / Lark (飞书) app bots over webhook or long connection.

Webhook path (no network I/O to Feishu): size cap -> JSON -> signature over the raw body
(required with an Encrypt Key) -> replay window -> decrypt -> verification token ->
url_verification challenge or event -> InboundMessage.

Replays: there is no nonce cache. A nonce recorded before the durable write refused the
redelivery of a request whose write had failed (a lost message), and Feishu re-pushes with a
new nonce anyway. A replayed request is either outside the timestamp window (refused) or
carries an event (message) id that ingress already stored (dropped as a duplicate): the
dedupe marker is written atomically with the message and outlives the window.

The bot's own open_id (to tell "@bot" from other mentions) is ``bot_open_id`` or, when not
configured, looked up at start-up (``GET bot/v3/info``) and shared through Redis, so that
``handle_webhook`` only reads it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError
from redis.exceptions import RedisError

from botcore.channel import (
    Accepted,
    AdapterDeps,
    Challenge,
    IngestFn,
    MessageStream,
    Rejected,
    WebhookOutcome,
    WebhookRequest,
)
from botcore.errors import ChannelError, ConfigError, SignatureError
from botcore.ledger import DeliveryLedger
from botcore.message import OutboundMessage, SendResult
from botcore.outbound import send_with_retry
from botcore.settings import BotConfig

from ._longconn import LarkSocket, bridge
from ._outbound import Part, attachment_part, body_parts
from ._parse import ParseContext, parse_event
from ._stream import CardStream
from .api import FeishuClient
from .crypto import decrypt, verify_signature
from .errors import CHANNEL, FeishuError
from .models import EventEnvelope, FeishuConfig

__all__ = ["FeishuAdapter"]

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
#: How long the looked-up bot open_id is kept in Redis (re-read at every start-up).
BOT_ID_TTL = 30 * 86_400
_SIGNATURE_HEADERS = ("x-lark-request-timestamp", "x-lark-request-nonce", "x-lark-signature")


def _reject(reason: str, status: int = 400) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=status)


def _load_json(data: bytes | str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise _reject("malformed_json") from None
    if not isinstance(value, dict):
        raise _reject("malformed_json")
    return value


def load_config(bot: BotConfig) -> FeishuConfig:
    """Validate ``bot.options``; ConfigError names the first bad key (never its value)."""
    config = bot.channel_options(FeishuConfig)
    if config.mode == "webhook" and config.verification_token is None:
        raise ConfigError(f"bots.{bot.id}.verification_token",
                          "the app's Verification Token (required in webhook mode)", "nothing")
    return config


class FeishuAdapter:
    """The Feishu / Lark channel.

    Args:
        bot: the ``[bots.<id>]`` table; Feishu keys are described by :class:`FeishuConfig`.
        deps: shared Redis, HTTP client and key builder.

    Attributes:
        clock: wall clock used for the replay window (injectable for tests).
    """

    channel: ClassVar[str] = CHANNEL
    config_model: ClassVar[type[BaseModel]] = FeishuConfig

    def __init__(self, bot: BotConfig, deps: AdapterDeps) -> None:
        self.bot = bot
        self.deps = deps
        self.config = load_config(bot)
        self.clock: Callable[[], float] = time.time
        self.client = FeishuClient(self.config, deps.http, deps.redis, deps.keys)
        self.ledger = DeliveryLedger(deps.redis, deps.keys, CHANNEL)
        self._ctx = ParseContext(bot.id, self.config.bot_open_id, self.config.bot_name)
        self._bot_key = deps.keys.channel_state(CHANNEL, bot.id, "bot_open_id")

    async def startup(self) -> None:
        """Find the bot's open_id if not configured; warn about a webhook without an
        Encrypt Key (no signature, no replay window)."""
        if self.config.mode == "webhook" and self.config.encrypt_key is None:
            log.warning("feishu bot=%s: no encrypt_key, webhooks are checked by token only",
                        self.bot.id)
        if self._ctx.bot_open_id is None:
            await self._discover_bot()

    async def _discover_bot(self) -> None:
        """``GET bot/v3/info`` once; keep the open_id in Redis for every process."""
        try:
            open_id = str((await self.client.bot_info()).get("open_id") or "")
            if open_id:
                await self.deps.redis.set(self._bot_key, open_id, ex=BOT_ID_TTL)
        except (ChannelError, RedisError) as exc:
            log.warning("feishu bot=%s: bot open_id lookup failed (%s); group @-mentions are "
                        "matched by bot_name or guessed", self.bot.id, type(exc).__name__)
            return
        if open_id:
            self._ctx = replace(self._ctx, bot_open_id=open_id)
            log.info("feishu bot=%s: bot open_id found", self.bot.id)

    async def _context(self) -> ParseContext:
        """The parse context, with the bot's open_id from Redis if this process lacks it.

        Raises:
            RedisError: Redis could not be read.
        """
        if self._ctx.bot_open_id is None:
            found = await self.deps.redis.get(self._bot_key)
            if found:
                open_id = found.decode() if isinstance(found, bytes) else str(found)
                self._ctx = replace(self._ctx, bot_open_id=open_id)
        return self._ctx

    async def shutdown(self) -> None:
        """Nothing to close: the HTTP and Redis clients belong to the runtime."""

    # inbound -----------------------------------------------------------------------------
    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Verify and parse one callback; every bad input becomes a 4xx ``Rejected``."""
        try:
            return await self._handle(request)
        except SignatureError as exc:
            log.warning("feishu webhook rejected bot=%s reason=%s", self.bot.id, exc.reason)
            return Rejected(exc.status, exc.reason)
        except RedisError as exc:  # Feishu retries a 5xx: nothing is lost
            log.error("feishu webhook bot=%s: redis unavailable (%s); answering 503",
                      self.bot.id, type(exc).__name__)
            return Rejected(503, "redis_unavailable")
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            log.warning("feishu webhook rejected bot=%s reason=bad_event (%s)", self.bot.id,
                        type(exc).__name__)
            return Rejected(400, "bad_event")

    async def _handle(self, request: WebhookRequest) -> WebhookOutcome:
        if self.config.mode != "webhook":
            raise _reject("webhook_mode_off", 404)
        if request.method.upper() != "POST":
            raise _reject("method_not_allowed", 405)
        if len(request.body) > MAX_BODY:
            raise _reject("body_too_large", 413)
        key = self.config.encrypt_key.get_secret_value() if self.config.encrypt_key else ""
        signed = any(request.headers.get(name) for name in _SIGNATURE_HEADERS)
        if key and signed:  # before parsing anything: the signature covers the raw body
            self._check_signed(request, key)
        payload = self._open(_load_json(request.body), key)
        env = EventEnvelope.model_validate(payload)
        self._check_token(env)
        if env.is_challenge:
            if not isinstance(env.challenge, str):
                raise _reject("bad_challenge")
            return Challenge(json.dumps({"challenge": env.challenge}), "application/json")
        if key and not signed:
            raise _reject("missing_signature", 401)
        messages = parse_event(env, payload, await self._context())
        if not messages:
            log.info("feishu bot=%s ignored event type=%s", self.bot.id, env.event_type)
        return Accepted(messages, ack_body="{}", content_type="application/json")

    @staticmethod
    def _open(outer: dict[str, Any], key: str) -> dict[str, Any]:
        encrypted = outer.get("encrypt")
        if encrypted is None:
            if key:
                raise _reject("expected_encrypted_body")
            return outer
        if not key:
            raise _reject("unexpected_encrypted_body")
        if not isinstance(encrypted, str):
            raise _reject("bad_base64")
        return _load_json(decrypt(key, encrypted))

    def _check_token(self, env: EventEnvelope) -> None:
        expected = self.config.verification_token
        if expected is None:
            return  # long_connection only: webhook mode requires a token (load_config)
        if not hmac.compare_digest(env.event_token.encode(),
                                   expected.get_secret_value().encode()):
            raise _reject("bad_token", 403)

    def _check_signed(self, request: WebhookRequest, key: str) -> None:
        timestamp, nonce, signature = (request.headers.get(n, "") for n in _SIGNATURE_HEADERS)
        if not (timestamp and nonce and signature):
            raise _reject("missing_signature", 401)
        verify_signature(timestamp, nonce, key, request.body, signature)
        try:
            sent = float(timestamp)
        except ValueError:
            raise _reject("bad_timestamp") from None
        sent = sent / 1000 if sent > 1e11 else sent  # tolerate milliseconds
        if abs(self.clock() - sent) > self.config.replay_window:
            raise _reject("stale_timestamp", 401)
        # no nonce cache: see the module docstring (ingress dedupes replays in the window)

    async def listen(self, ingest: IngestFn) -> None:
        """Serve the long connection until cancelled; reconnect with backoff.

        Each event is parsed like a webhook and ``await ingest(msg)`` runs on this loop;
        lark-oapi acknowledges the frame only after that returned.
        """
        loop = asyncio.get_running_loop()

        async def handle(payload: dict[str, Any]) -> None:
            env = EventEnvelope.model_validate(payload)
            for message in parse_event(env, payload, await self._context()):
                await ingest(message)

        delay = 1.0
        while True:
            socket = LarkSocket(self.config.app_id, self.config.app_secret.get_secret_value(),
                                self.config.api_base, bridge(loop, handle))
            started = loop.time()
            thread = loop.run_in_executor(None, socket.run)
            try:
                await asyncio.shield(thread)
            except asyncio.CancelledError:
                socket.stop()
                await asyncio.wait([thread], timeout=5)
                raise
            except Exception as exc:  # lark-oapi raises its own types; log and reconnect
                log.warning("feishu bot=%s long connection failed: %s", self.bot.id,
                            type(exc).__name__)
            delay = 1.0 if loop.time() - started > 60 else min(delay * 2, 60.0)
            await asyncio.sleep(delay)

    # outbound ----------------------------------------------------------------------------
    async def _deliver(self, message: OutboundMessage, msg_type: str, content: dict[str, Any],
                       uuid: str) -> str:
        ctx = message.context
        chat_id = str(ctx.get("chat_id") or message.conversation.chat_id)
        reply_to = message.reply_to or ctx.get("message_id")
        if reply_to:
            return await self.client.reply_message(chat_id, str(reply_to), msg_type, content,
                                                   uuid, in_thread=bool(ctx.get("thread_id")))
        return await self.client.send_message(chat_id, msg_type, content, uuid)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text / markdown / card and attachments; retried, idempotent by ``uuid``.

        Raises:
            ChannelApiError: a subclass for whatever Feishu refused (after retries).
        """
        parts: list[Part] = body_parts(message)
        for segment in message.attachments:
            parts.append(await send_with_retry(
                lambda seg=segment: attachment_part(self.client, seg)))  # type: ignore[misc]
        if not parts:
            raise FeishuError("nothing to send: empty text, no card, no attachments")
        ids: list[str] = []
        for index, (msg_type, content) in enumerate(parts):
            key = message.idempotency_key
            uuid = key if index == 0 or not key else f"{key}-{index}"
            ids.append(await send_with_retry(
                lambda t=msg_type, c=content, u=uuid: self._deliver(message, t, c, u)))  # type: ignore[misc]
        return SendResult(message_id=ids[0] or None, parts=len(ids),
                          extra={"message_ids": ids})

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """A CardKit card updated in place (created on the first update; a re-run of the
        turn with the same idempotency key continues the same card)."""

        async def deliver(msg_type: str, content: dict[str, Any], uuid: str) -> str:
            return await self._deliver(message, msg_type, content, uuid)

        return CardStream(self.client, deliver, message.idempotency_key, ledger=self.ledger)
