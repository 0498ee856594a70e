"""The WeCom channel adapter: self-built app (XML) and AI bot (JSON) callbacks.

``handle_webhook`` verifies (signature, timestamp window, optional nonce cache), decrypts and
parses with no call to WeCom; bad input becomes :class:`~botcore.channel.Rejected` (400
malformed, 401 signature or stale, 403 wrong receiver, 413 too large), never an exception.
App messages are acked with an empty 200 and answered later through ``message/send``; the
AI bot is answered through a stream whose state the worker writes to Redis (see
:class:`~adapters.wecom.api.AiBotReplier`) and the webhook returns on each refresh callback.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import ClassVar, TypeVar

from pydantic import BaseModel
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
from botcore.errors import ConfigError, SignatureError
from botcore.ledger import DeliveryLedger
from botcore.message import OutboundMessage, Segment, SendResult
from botcore.settings import BotConfig

from ._parse import (
    build_aibot_message,
    build_app_message,
    parse_aibot,
    parse_app,
    parse_json,
    parse_xml,
)
from ._text import split_utf8
from .api import AIBOT_LIMIT, AiBotReplier, WeComClient
from .crypto import WXBizMsgCrypt
from .errors import CHANNEL, WeComError
from .kf import KF_EVENT, KfSync, send_kf
from .models import AiBotCallback, WeComConfig

__all__ = ["WeComAdapter"]

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BODY = 1_048_576
#: WeCom polls a stream for ≤ 6 min after the user's message; after this, use response_url.
STREAM_FRESH_FOR = 330.0
_MEDIA_KINDS = {"image": "image", "voice": "voice", "video": "video", "file": "file"}


def _reject(reason: str, status: int) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=status)


def _need(value: T | None) -> T:
    if value is None:  # load_config checked the mode's fields already
        raise ConfigError("wecom", "the fields the mode requires")
    return value


def load_config(bot: BotConfig) -> WeComConfig:
    """Validate ``bot.options``; raise ConfigError naming the key (never echoing secrets)."""
    config = bot.channel_options(WeComConfig)
    missing = config.missing()
    if missing:
        raise ConfigError(f"bots.{bot.id}.{missing[0]}",
                          f"a value (required when mode = {config.mode!r})", "nothing")
    if config.kf and config.mode != "app":
        raise ConfigError(f"bots.{bot.id}.kf", "false unless mode = 'app'", "true")
    return config


class WeComAdapter:
    """WeCom (企业微信): self-built app callbacks or AI bot (智能机器人) callbacks.

    Attributes:
        clock: ``time.time`` by default; tests set it to an official vector's timestamp.
        client: the app API client (``None`` in AI bot mode).
        replier: AI bot stream state and ``response_url`` replies.
    """

    channel: ClassVar[str] = CHANNEL
    config_model: ClassVar[type[BaseModel]] = WeComConfig

    def __init__(self, bot: BotConfig, deps: AdapterDeps) -> None:
        self.bot_id = bot.id
        self.config = load_config(bot)
        self._deps = deps
        self.clock: Callable[[], float] = time.time
        cfg = self.config
        self.client: WeComClient | None = None
        if cfg.mode == "app":
            corp_id, secret = _need(cfg.corp_id), _need(cfg.secret)
            self._crypt = WXBizMsgCrypt(_need(cfg.token).get_secret_value(),
                                        _need(cfg.encoding_aes_key).get_secret_value(), corp_id)
            self.client = WeComClient(deps.http, deps.redis, deps.keys, corp_id=corp_id,
                                      agent_id=_need(cfg.agent_id), secret=secret,
                                      api_base=cfg.api_base,
                                      member_windows=cfg.member_limits,
                                      max_wait=cfg.rate_limit_wait)
        else:
            self._crypt = WXBizMsgCrypt(_need(cfg.aibot_token).get_secret_value(),
                                        _need(cfg.aibot_encoding_aes_key).get_secret_value(), "")
        self.replier = AiBotReplier(deps.http, deps.redis, deps.keys, bot.id, cfg.api_base)
        self.ledger = DeliveryLedger(deps.redis, deps.keys, CHANNEL)
        self.kf: KfSync | None = (KfSync(self.client, deps.redis, deps.keys, bot.id)
                                  if cfg.kf and self.client is not None else None)

    async def startup(self) -> None:
        """Nothing to open: the token is fetched lazily by the first send."""

    async def shutdown(self) -> None:
        """Nothing to close: the HTTP and Redis clients belong to the runtime."""

    # ---- inbound ------------------------------------------------------------------------

    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Verify, decrypt and parse one callback; never raises, never calls WeCom."""
        try:
            return await self._handle(request)
        except SignatureError as exc:
            log.info("wecom webhook rejected: bot=%s reason=%s", self.bot_id, exc.reason)
            return Rejected(exc.status, exc.reason)
        except RedisError:
            log.warning("wecom webhook: redis unavailable (bot=%s)", self.bot_id)
            return Rejected(503, "redis_unavailable")
        except Exception:  # a parser bug must not become a 500 that WeCom retries forever
            log.exception("wecom webhook: unexpected error (bot=%s)", self.bot_id)
            return Rejected(400, "malformed")

    async def _handle(self, request: WebhookRequest) -> WebhookOutcome:
        if len(request.body) > MAX_BODY:
            raise _reject("body_too_large", 413)
        method = request.method.upper()
        if method not in ("GET", "POST"):
            raise _reject("method_not_allowed", 405)
        query = request.query
        signature = query.get("msg_signature")
        timestamp = query.get("timestamp")
        nonce = query.get("nonce")
        if not signature or not timestamp or not nonce:
            raise _reject("missing_signature", 401)
        self._check_timestamp(timestamp)
        if method == "GET":
            return self._verify_url(signature, timestamp, nonce, query.get("echostr"))
        encrypt = self._envelope(request.body)
        self._crypt.verify(signature, timestamp, nonce, encrypt)
        await self._check_nonce(timestamp, nonce)
        plaintext = self._crypt.decrypt(encrypt)
        if self.config.mode == "app":
            fields = parse_xml(plaintext)
            if fields.get("Event") == KF_EVENT and self.kf is not None:
                return await self._kf_note(fields)
            message = build_app_message(self.bot_id, self.config.agent_id, parse_app(fields),
                                        fields)
            return Accepted((message,), ack_body="")
        return await self._aibot(parse_aibot(parse_json(plaintext)))

    async def _kf_note(self, fields: dict[str, str]) -> Accepted:
        """A kf callback carries no message: note "sync needed" for the listen loop."""
        open_kfid = fields.get("OpenKfId", "")
        if not open_kfid:
            raise _reject("bad_payload", 400)
        await self.kf_sync().notify(open_kfid, fields.get("Token", ""))
        return Accepted((), ack_body="")

    def kf_sync(self) -> KfSync:
        """The kf sync state; ConfigError unless ``kf = true``."""
        if self.kf is None:
            raise ConfigError(f"bots.{self.bot_id}.kf", "true (and mode = 'app')", "false")
        return self.kf

    @property
    def listens(self) -> bool:
        """``botcore serve`` runs :meth:`listen` for this bot: only with ``kf = true``."""
        return self.kf is not None

    async def listen(self, ingest: IngestFn) -> None:
        """WeChat Customer Service: work off the sync notes left by the webhook, reading
        ``kf/sync_msg`` and ingesting each new user message before its cursor is stored.

        Raises:
            ConfigError: ``kf`` is not enabled (nothing to listen to).
        """
        await self.kf_sync().run(ingest)

    def _check_timestamp(self, timestamp: str) -> None:
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise _reject("bad_timestamp", 400)
        if abs(self.clock() - int(timestamp)) > self.config.replay_window:
            raise _reject("stale_timestamp", 401)

    def _verify_url(self, signature: str, timestamp: str, nonce: str,
                    echostr: str | None) -> Challenge:
        if not echostr:
            raise _reject("missing_echostr", 400)
        echostr = echostr.replace(" ", "+")  # a "+" decoded as a space by a form parser
        self._crypt.verify(signature, timestamp, nonce, echostr)
        return Challenge(body=self._crypt.decrypt(echostr))  # bare plaintext, no newline

    def _envelope(self, body: bytes) -> str:
        value = (parse_xml(body).get("Encrypt") if self.config.mode == "app"
                 else parse_json(body).get("encrypt"))
        encrypt = value if isinstance(value, str) else ""
        if not encrypt:
            raise _reject("missing_encrypt", 400)
        return encrypt

    async def _check_nonce(self, timestamp: str, nonce: str) -> None:
        if not self.config.nonce_cache:
            return
        key = self._deps.keys.nonce(CHANNEL, f"{self.bot_id}:{timestamp}:{nonce}")
        fresh = await self._deps.redis.set(key, b"1", nx=True,
                                           ex=2 * self.config.replay_window)
        if not fresh:
            raise _reject("replayed_nonce", 401)

    async def _aibot(self, callback: AiBotCallback) -> Accepted:
        if callback.msgtype == "stream":
            stream_id = str(callback.part("stream").get("id", ""))
            if not stream_id:
                raise _reject("bad_payload", 400)
            return self._stream_reply(stream_id, await self._read_stream(stream_id))
        message = build_aibot_message(self.bot_id, callback, self.clock())
        new_stream = message.platform.get("stream_id")
        if new_stream is None:  # events: nothing to stream; reply later via response_url
            return Accepted((message,), ack_body="")
        reply = self._stream_reply(str(new_stream), None)  # WeCom starts polling this id
        return Accepted((message,), ack_body=reply.ack_body, content_type=reply.content_type)

    async def _read_stream(self, stream_id: str) -> tuple[str, bool]:
        try:
            state = await self.replier.read(stream_id)
        except RedisError:  # keep WeCom polling rather than failing the callback
            return "", False
        return state.content, state.finish

    def _stream_reply(self, stream_id: str, state: tuple[str, bool] | None) -> Accepted:
        content, finish = state or ("", False)
        payload = {"msgtype": "stream",
                   "stream": {"id": stream_id, "finish": finish, "content": content}}
        nonce = str(secrets.randbelow(10**10))
        body = self._crypt.seal_json(payload, str(int(self.clock())), nonce)
        return Accepted((), ack_body=body, content_type="application/json")

    # ---- outbound -----------------------------------------------------------------------

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send a reply: ``message/send`` (app) or the stream / ``response_url`` (AI bot).

        Raises:
            WeComError: nothing to answer with (AI bot) or an unusable attachment.
            ChannelApiError and subclasses: what WeCom answered.
        """
        if message.context.get("mode") == "aibot" or self.client is None:
            return await self._send_aibot(message, message.text)
        if message.context.get("mode") == "kf":
            ids = await send_kf(self.client, message)
            return SendResult(message_id=(ids[-1] or None) if ids else None, parts=len(ids),
                              extra={"msgids": ids, "via": "kf"})
        return await self._send_app(self.client, message)

    async def _send_app(self, client: WeComClient, message: OutboundMessage) -> SendResult:
        touser = str(message.context.get("touser") or message.conversation.chat_id)
        key = message.idempotency_key or None
        ids: list[str] = []
        if message.text:
            ids += await client.send_text(touser, message.text, idempotency_key=key,
                                          markdown=message.format == "markdown")
        for segment in message.attachments:
            kind = _MEDIA_KINDS.get(segment.type)
            if kind is None:
                raise WeComError(f"cannot send a {segment.type!r} attachment")

            async def media(kind: str = kind, segment: Segment = segment) -> str | None:
                media_id = await self._media_id(client, kind, segment)
                return await client.send_media(touser, kind, media_id)
            ids.append(await client.send_part(key, len(ids), media))
        return SendResult(message_id=(ids[-1] or None) if ids else None, parts=len(ids),
                          extra={"msgids": ids})

    @staticmethod
    async def _media_id(client: WeComClient, kind: str, segment: Segment) -> str:
        if segment.file_id:
            return segment.file_id
        content = segment.data.get("content")
        if isinstance(content, bytes):
            return await client.upload_media(kind, segment.name or kind, content)
        raise WeComError("attachment needs file_id (a media_id) or data['content'] bytes")

    def _stream_open(self, message: OutboundMessage) -> str | None:
        stream_id = message.context.get("stream_id")
        received = float(message.context.get("received_at") or 0.0)
        if stream_id and self.clock() - received < STREAM_FRESH_FOR:
            return str(stream_id)
        return None

    async def _send_aibot(self, message: OutboundMessage, text: str) -> SendResult:
        """The answer goes to the open stream (≤ 20480 bytes; what does not fit follows once
        through ``response_url``), else to ``response_url``. Each part is recorded in the
        ledger, so a re-run of the turn sends neither again."""
        key = message.idempotency_key or None
        stream_id = self._stream_open(message)
        if stream_id and (await self.ledger.delivered_parts(key, 1)
                          or not (await self.replier.read(stream_id)).finish):
            first = split_utf8(text, AIBOT_LIMIT)[0]
            rest = text[len(first):].lstrip("\n")
            if rest and not message.context.get("response_url"):
                first, rest = text, ""  # nowhere to put the rest: write() cuts it visibly

            async def finish_stream() -> str:
                await self.replier.write(stream_id, first, finish=True)
                return stream_id
            await self.ledger.part(key, 0, finish_stream)
            if rest:
                await self.ledger.part(key, 1, lambda: self._respond(message, rest, True))
            return SendResult(message_id=stream_id, parts=2 if rest else 1,
                              extra={"via": "stream"})
        await self.ledger.part(key, 0, lambda: self._respond(message, text, False))
        return SendResult(extra={"via": "response_url"})

    async def _respond(self, message: OutboundMessage, text: str, follow_up: bool) -> str:
        response_url = message.context.get("response_url")
        if not response_url:
            raise WeComError("no open stream and no response_url to answer with")
        if not await self.replier.claim(str(response_url)):
            if follow_up:  # an earlier reply of this turn used it: the rest cannot be sent
                log.warning("wecom aibot: response_url already used; %d bytes of the answer "
                            "not sent (bot=%s)", len(text.encode("utf-8")), self.bot_id)
                return ""
            raise WeComError("response_url already used (it works once)")
        try:
            await self.replier.respond(str(response_url), text)
        except Exception:
            await self.replier.release(str(response_url))
            raise
        return "response_url"

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """An AI bot stream (cumulative content polled by WeCom); None for app messages."""
        if message.context.get("mode") != "aibot" or not message.context.get("stream_id"):
            return None
        return _AiBotStream(self, message)


class _AiBotStream:
    """Writes the answer so far to the stream state; WeCom shows it on its next poll."""

    def __init__(self, adapter: WeComAdapter, message: OutboundMessage) -> None:
        self._adapter = adapter
        self._message = message

    async def update(self, text: str) -> None:
        """Store ``text`` (the whole answer so far), unfinished."""
        stream_id = self._adapter._stream_open(self._message)
        if stream_id:
            await self._adapter.replier.write(stream_id, text, finish=False)

    async def finish(self, text: str) -> SendResult:
        """Store the final ``text`` (or fall back to ``response_url`` if the stream expired)."""
        return await self._adapter._send_aibot(self._message, text)
