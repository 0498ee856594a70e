"""The DingTalk (钉钉) adapter: app robot over HTTP or Stream, replies through the session
webhook or the OpenAPI, streaming through AI cards.

HTTP mode accepts two kinds of callbacks on ``/webhooks/dingtalk/<bot_id>``:

* robot messages, authenticated by the ``timestamp`` / ``sign`` headers;
* encrypted event callbacks (``{"encrypt": ...}`` with ``msg_signature``, ``timestamp``,
  ``nonce`` in the query), when ``aes_key`` and ``token`` are set; ``check_url`` is answered
  at once with the encrypted ``"success"``.

Messages the bot cannot read (``readable_types``) become ``unsupported`` events that go
through the durable pipeline like any message: with ``unsupported = "reply"`` they carry
``unsupported_text`` as ``event_data["reply"]``, which botcore sends unless an
``@app.event("unsupported")`` handler takes the event; with ``"event"`` only the app decides;
``"ignore"`` drops them.

Replays: DingTalk's ``sign`` covers only the timestamp (not the body), so two genuine
messages signed in the same millisecond, and a redelivery after a failed durable write, carry
the same headers. No request is refused for having been seen before: the timestamp window
bounds how long a signature is valid, and botcore's ingress dedupes on ``msgId`` (the
``event_id``), so a replayed message is answered 200 and dropped as a duplicate, never
processed twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from adapters.dingtalk._stream import BotMessageHandler, make_stream_client
from adapters.dingtalk.api import DingTalkCardStream, DingTalkClient
from adapters.dingtalk.crypto import CallbackCrypto, check_timestamp, verify_app_sign
from adapters.dingtalk.errors import CHANNEL
from adapters.dingtalk.models import DingTalkConfig, event_to_inbound, to_inbound
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
from botcore.message import InboundMessage, OutboundMessage, SendResult
from botcore.settings import BotConfig

__all__ = ["DingTalkAdapter"]

log = logging.getLogger(__name__)

MAX_BODY = 1_048_576
_JSON = "application/json"


def _reject(reason: str, status: int = 400) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=status)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _reject("malformed_json") from None
    if not isinstance(data, dict):
        raise _reject("malformed_json")
    return data


class DingTalkAdapter:
    """DingTalk app robot (enterprise-internal app).

    Args:
        bot: the ``[bots.<id>]`` settings; channel keys are validated by ``config_model``.
        deps: shared Redis, HTTP client and key builder.

    Raises:
        ConfigError: a missing or invalid DingTalk setting (named ``bots.<id>.<field>``).
    """

    channel: ClassVar[str] = CHANNEL
    config_model: ClassVar[type[BaseModel]] = DingTalkConfig

    def __init__(self, bot: BotConfig, deps: AdapterDeps) -> None:
        self.bot = bot
        self.deps = deps
        self.config = bot.channel_options(DingTalkConfig)
        #: ``time.time``; tests set it to check official vectors from the past.
        self.clock: Callable[[], float] = time.time
        self.crypto: CallbackCrypto | None = None
        if self.config.aes_key is not None and self.config.token is not None:
            try:
                self.crypto = CallbackCrypto(self.config.token.get_secret_value(),
                                             self.config.aes_key.get_secret_value(),
                                             self.config.client_id)
            except ValueError as exc:
                raise ConfigError(f"bots.{bot.id}.aes_key", str(exc)) from None
        self.client = DingTalkClient(deps.http, deps.redis, deps.keys, self.config,
                                     clock=lambda: self.clock())


    async def startup(self) -> None:
        """Nothing to open: the HTTP client and Redis are shared."""
        log.info("dingtalk bot %s ready (mode=%s)", self.bot.id, self.config.mode)

    async def shutdown(self) -> None:
        """Nothing to close."""

    # inbound ---------------------------------------------------------------------------
    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Verify and parse one callback; never raises, never answers 5xx."""
        try:
            return await self._handle(request)
        except SignatureError as exc:
            return Rejected(exc.status, exc.reason)
        except Exception as exc:
            log.warning("dingtalk webhook for %s not processed (%s)", self.bot.id,
                        type(exc).__name__)
            return Rejected(400, "unprocessable")

    async def _handle(self, request: WebhookRequest) -> WebhookOutcome:
        if request.method.upper() != "POST":
            raise _reject("method_not_allowed", 405)
        if len(request.body) > MAX_BODY:
            raise _reject("body_too_large", 413)
        payload = _json_object(request.body)
        if "encrypt" in payload:
            return await self._handle_encrypted(request.query, payload)
        timestamp, sign = request.headers.get("timestamp"), request.headers.get("sign")
        verify_app_sign(timestamp, sign, self.config.client_secret.get_secret_value(),
                        now=self.clock(), window=self.config.sign_window)
        return Accepted(self._robot_messages(payload))

    def parse(self, payload: Mapping[str, Any]) -> InboundMessage | None:
        """The one parser of robot messages (HTTP body or Stream frame data).

        Returns what goes into the inbox, or None. With ``unsupported = "reply"`` a message
        the bot cannot read is an ``unsupported`` event whose ``event_data["reply"]`` is
        ``unsupported_text``: botcore answers it (once, like any message) unless the app
        handles the event itself.
        """
        cfg = self.config
        msg = to_inbound(payload, self.bot.id, readable=cfg.readable_types,
                         unsupported="ignore" if cfg.unsupported == "ignore" else "event")
        if msg is not None and msg.event_type == "unsupported" and cfg.unsupported == "reply":
            data = {**msg.event_data, "reply": cfg.unsupported_text}
            return msg.model_copy(update={"event_data": data})
        return msg

    def _robot_messages(self, payload: Mapping[str, Any]) -> tuple[InboundMessage, ...]:
        try:
            msg = self.parse(payload)
        except ValidationError:
            raise _reject("not_a_robot_message") from None
        return (msg,) if msg is not None else ()

    async def _handle_encrypted(self, query: Mapping[str, str], payload: Mapping[str, Any]
                                ) -> WebhookOutcome:
        if self.crypto is None:
            raise _reject("encryption_not_configured", 403)
        signature = query.get("msg_signature") or query.get("signature")
        timestamp, nonce, encrypt = query.get("timestamp"), query.get("nonce"), payload["encrypt"]
        if not (signature and timestamp and nonce):
            raise _reject("missing_signature", 401)
        if not isinstance(encrypt, str):
            raise _reject("malformed_json")
        check_timestamp(timestamp, self.clock(), self.config.sign_window)
        self.crypto.verify(signature, timestamp, nonce, encrypt)
        plain = self.crypto.decrypt(encrypt)
        data = _json_object(plain.encode())
        reply = self.crypto.success_reply(str(int(self.clock() * 1000)))
        if data.get("EventType") == "check_url":
            return Challenge(reply, content_type=_JSON)
        if "msgtype" in data:
            messages = self._robot_messages(data)
        else:
            digest = hashlib.sha256(plain.encode()).hexdigest()[:32]
            messages = (event_to_inbound(data, self.bot.id, digest),)
        return Accepted(messages, ack_body=reply, content_type=_JSON)

    async def listen(self, ingest: IngestFn) -> None:
        """Stream mode: receive robot messages over DingTalk's WebSocket until cancelled.

        Each message is acked once ``await ingest(msg)`` returned. DingTalk never re-pushes a
        robot message, so a failing write is retried here for ``stream_retry_for`` seconds
        (backoff with jitter) before the message is given up with an error log.
        """
        handler = BotMessageHandler(self.parse, ingest, retry_for=self.config.stream_retry_for)
        client = make_stream_client(self.config.client_id,
                                    self.config.client_secret.get_secret_value(),
                                    self.deps.http, self.config.api_base, handler,
                                    idle_timeout=self.config.stream_idle_timeout)
        await client.start()

    # outbound --------------------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> SendResult:
        """Reply via the session webhook while valid, else the OpenAPI."""
        return await self.client.send(message)

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """An AI-card stream if ``card_template_id`` is set, else None (botcore buffers)."""
        if not self.config.card_template_id:
            return None
        return DingTalkCardStream(self.client, message)
