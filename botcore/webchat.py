"""The web chat channel (``web``): the browser page and ``botcore chat`` talk to botcore here.

Inbound, the page POSTs JSON to the ordinary webhook route ``/webhooks/web/{bot_id}``::

    {"conversation_id": "c-1", "user_id": "u-1", "text": "hi", "client_msg_id": "<uuid>"}

``client_msg_id`` is the delivery id, so a retried POST is dropped by the usual dedupe.
Outbound, :meth:`WebChatAdapter.send` appends an event to the conversation's Redis stream
(``keys.web_outbox``), which ``botcore.web.chat`` relays to the browser as Server-Sent
Events. Events are JSON-able dicts of strings:

* ``{"type": "message", "id", "text", "format", "reply_to", "buttons"}``: one reply;
  ``stream_id`` is added when it ends a stream, ``citations`` (a JSON list of
  :class:`~botcore.message.Citation` objects) when the answer has sources;
* ``{"type": "delta", "stream_id", "text", "format"}``: the whole text so far of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from redis.typing import EncodableT, FieldT

from botcore.channel import (
    Accepted,
    AdapterDeps,
    MessageStream,
    Rejected,
    WebhookOutcome,
    WebhookRequest,
)
from botcore.message import (
    ConversationKey,
    InboundMessage,
    OutboundMessage,
    Sender,
    SendResult,
)
from botcore.settings import BotConfig

__all__ = [
    "KEY_HEADER",
    "MAX_BODY_BYTES",
    "WebChatAdapter",
    "WebChatConfig",
    "WebChatStream",
    "web_conversation",
]

#: The header carrying the access key (HTTP header names are case-insensitive).
KEY_HEADER = "X-Botcore-Key"
#: Web chat POST bodies above this size are answered 413.
MAX_BODY_BYTES = 64 * 1024
#: How long an idle conversation's reply stream lives, seconds.
OUTBOX_TTL = 86_400
#: A stream writes at most one delta per this many seconds (about 20 updates/s).
MIN_UPDATE_INTERVAL = 0.05
#: How long a reply's "already shown" marker lives, seconds (the re-run window).
ONCE_TTL = 86_400
# KEYS: marker, stream. ARGV: marker ttl, maxlen, stream ttl, field, value, ...
_APPEND_ONCE = """
local seen = redis.call('GET', KEYS[1])
if seen then return seen end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], id, 'EX', ARGV[1])
return id
"""
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


class WebChatConfig(BaseModel):
    """Options of a ``channel = "web"`` bot (the extra keys of its ``[bots.<id>]`` table).

    Attributes:
        access_key: when set, every POST and event stream must send it in ``X-Botcore-Key``.
        allowed_origins: browser origins (``https://example.com``) allowed besides the page's
            own; ``"*"`` allows any. Requests without an ``Origin`` header (terminal) pass.
        history_limit: about how many events a conversation's reply stream keeps.
        messages_per_minute: how many messages one conversation may send a minute (a public
            page must not let one visitor spend the model budget); 0 turns the limit off.
    """

    model_config = ConfigDict(extra="forbid")

    access_key: SecretStr | None = None
    allowed_origins: list[str] = Field(default_factory=list)
    history_limit: int = Field(200, ge=1, le=100_000)
    messages_per_minute: int = Field(20, ge=0, le=10_000)


class _WebPayload(BaseModel):
    """The JSON body the page and the terminal client POST."""

    model_config = ConfigDict(extra="ignore", strict=True)

    conversation_id: str = Field(pattern=CONVERSATION_ID_PATTERN)
    user_id: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=8000)
    client_msg_id: str = Field(min_length=1, max_length=128)
    user_name: str | None = Field(None, max_length=128)


def web_conversation(bot_id: str, conversation_id: str) -> ConversationKey:
    """The conversation key of a web chat: the same for the inbound side and the stream.

    Example:
        >>> web_conversation("demo", "c1").id
        'web:demo:c1'
    """
    return ConversationKey(channel="web", bot_id=bot_id, chat_id=conversation_id)


def _origin_allowed(headers: Mapping[str, str], allowed: list[str]) -> bool:
    """No Origin (not a browser), an allowed origin, or the page's own origin."""
    origin = headers.get("origin")
    if not origin:
        return True
    if "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}:
        return True
    host = headers.get("x-forwarded-host") or headers.get("host") or ""
    return bool(host) and urlsplit(origin).netloc.lower() == host.split(",")[0].strip().lower()


def _field_error(exc: ValidationError) -> str:
    """A short reason naming the first bad field (never echoes the value)."""
    first = exc.errors(include_input=False, include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or "body"
    return f"invalid field '{field}': {first['msg']}"


class WebChatAdapter:
    """The web chat channel: POSTed JSON in, a Redis stream out (read through SSE).

    Args:
        bot: the bot's settings; its extra keys are validated with :class:`WebChatConfig`.
        deps: shared clients (only ``redis`` and ``keys`` are used).

    Raises:
        ConfigError: an unknown or invalid option, named ``bots.<id>.<field>``.

    Example:
        >>> adapter = WebChatAdapter(bot, deps)            # doctest: +SKIP
        >>> await adapter.send(OutboundMessage(conversation=key, text="hi"))  # doctest: +SKIP
    """

    channel: ClassVar[str] = "web"
    config_model: ClassVar[type[BaseModel]] = WebChatConfig

    def __init__(self, bot: BotConfig, deps: AdapterDeps) -> None:
        self.config = bot.channel_options(WebChatConfig)
        self.bot = bot
        self.deps = deps
        self.clock: Callable[[], float] = time.time

    @property
    def key_required(self) -> bool:
        """True when clients must send ``X-Botcore-Key``."""
        return self.config.access_key is not None

    def check_key(self, given: str | None) -> bool:
        """Compare a client's key with the configured one in constant time.

        Args:
            given: the ``X-Botcore-Key`` header value, or None when absent.

        Returns:
            True when no key is configured, or when ``given`` matches it.
        """
        if self.config.access_key is None:
            return True
        expected = self.config.access_key.get_secret_value().encode()
        return hmac.compare_digest((given or "").encode(), expected)

    def outbox_key(self, conversation: ConversationKey) -> str:
        """The Redis stream holding the conversation's replies."""
        return self.deps.keys.web_outbox(conversation.id)

    async def startup(self) -> None:
        """Nothing to open: Redis is shared and connects lazily."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Check and parse one POST from the page or the terminal client (no I/O).

        Args:
            request: the raw request; header names are lower-case.

        Returns:
            Accepted with one message, or Rejected: 405 not a POST, 413 body over 64 KiB,
            403 foreign origin, 401 missing or wrong key, 400 malformed (naming the field).
            Accepted carries ``messages_per_minute``: the ingress answers 429 over it.
        """
        if request.method.upper() != "POST":
            return Rejected(405, "web chat accepts POST only")
        if len(request.body) > MAX_BODY_BYTES:
            return Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
        if not _origin_allowed(request.headers, self.config.allowed_origins):
            return Rejected(403, "origin not allowed (see allowed_origins)")
        if not self.check_key(request.headers.get(KEY_HEADER.lower())):
            return Rejected(401, f"missing or wrong {KEY_HEADER} header")
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return Rejected(400, "body is not valid JSON")
        if not isinstance(data, dict):
            return Rejected(400, "body must be a JSON object")
        try:
            payload = _WebPayload.model_validate(data)
        except ValidationError as exc:
            return Rejected(400, _field_error(exc))
        if not payload.text.strip():
            return Rejected(400, "invalid field 'text': must not be blank")
        message = self._to_inbound(payload, data)
        ack = {"ok": True, "conversation_id": payload.conversation_id,
               "client_msg_id": payload.client_msg_id}
        return Accepted((message,), json.dumps(ack), "application/json",
                        limit_per_minute=self.config.messages_per_minute)

    def _to_inbound(self, payload: _WebPayload, raw: dict[str, Any]) -> InboundMessage:
        return InboundMessage(
            channel=self.channel,
            bot_id=self.bot.id,
            conversation=web_conversation(self.bot.id, payload.conversation_id),
            event_id=payload.client_msg_id,
            message_id=payload.client_msg_id,
            chat_type="private",
            sender=Sender(id=payload.user_id, name=payload.user_name),
            text=payload.text,
            mentioned=True,
            timestamp=self.clock(),
            platform={"conversation_id": payload.conversation_id},
            raw=raw,
        )

    async def append(self, conversation: ConversationKey, event: Mapping[str, str]) -> str:
        """XADD one event to the conversation's stream (trimmed, expiring); return its id.

        Args:
            conversation: whose stream.
            event: field -> string value.
        """
        key = self.outbox_key(conversation)
        fields: dict[FieldT, EncodableT] = {}
        fields.update(event)
        async with self.deps.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, fields, maxlen=self.config.history_limit, approximate=True)
            pipe.expire(key, OUTBOX_TTL)
            entry_id, _ = await pipe.execute()
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def append_once(self, conversation: ConversationKey, event: Mapping[str, str],
                          once: str) -> str:
        """Append ``event`` unless an event with the same ``once`` key was appended before
        (one Lua script: a crash between the write and the caller's own record cannot make
        a re-run show the reply twice). Returns the entry id, the first one's if repeated."""
        args: list[EncodableT] = [ONCE_TTL, self.config.history_limit, OUTBOX_TTL]
        for name, value in event.items():
            args += [name, value]
        marker = self.deps.keys.channel_state("web", self.bot.id, f"sent:{once}")
        found = await self.deps.redis.eval(_APPEND_ONCE, 2, marker,
                                           self.outbox_key(conversation), *args)
        return found.decode() if isinstance(found, bytes) else str(found)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Append a ``message`` event to the conversation's stream.

        Args:
            message: the reply; ``text``, ``format``, ``reply_to``, ``buttons`` and
                ``citations`` are used.

        Returns:
            SendResult whose ``message_id`` is the stream entry id (also the SSE event id).
        """
        event = _message_event(message, message.text)
        if message.idempotency_key:
            entry_id = await self.append_once(message.conversation, event,
                                              message.idempotency_key)
        else:
            entry_id = await self.append(message.conversation, event)
        return SendResult(message_id=entry_id)

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """A stream that shows the answer while it is written (deltas, then the final text).

        Args:
            message: the template reply (conversation, format, buttons, reply_to,
                citations: they go on the final ``message`` event).
        """
        return WebChatStream(self, message)


def _message_event(message: OutboundMessage, text: str, stream_id: str = "") -> dict[str, str]:
    event = {
        "type": "message",
        "id": message.idempotency_key or uuid.uuid4().hex,
        "text": text,
        "format": message.format,
        "reply_to": message.reply_to or "",
        "buttons": json.dumps([list(pair) for pair in message.buttons], ensure_ascii=False),
    }
    if stream_id:
        event["stream_id"] = stream_id
    if message.citations:
        event["citations"] = json.dumps(
            [c.model_dump(mode="json", exclude_none=True) for c in message.citations],
            ensure_ascii=False)
    return event


class WebChatStream:
    """Writes ``delta`` events (coalesced to ~20/s) and one final ``message`` event.

    Deltas carry the whole text so far, so dropping intermediate ones loses nothing; the last
    pending one is written after the interval. When the stream finishes, its deltas are
    deleted from the Redis stream so that they do not crowd the history out.

    Args:
        adapter: the web chat adapter writing the events.
        template: the reply this stream produces.
    """

    def __init__(self, adapter: WebChatAdapter, template: OutboundMessage) -> None:
        self._adapter = adapter
        self._template = template
        self.stream_id = template.idempotency_key or uuid.uuid4().hex
        self.clock: Callable[[], float] = time.monotonic
        self._last_write = float("-inf")
        self._last_text: str | None = None
        self._pending: str | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._delta_ids: list[str] = []
        self._finished = False

    async def update(self, text: str) -> None:
        """Show ``text`` (the whole answer so far); coalesced to at most ~20 writes/s."""
        if self._finished or text == self._last_text:
            return
        wait = self._last_write + MIN_UPDATE_INTERVAL - self.clock()
        if wait <= 0 and self._flusher is None:
            await self._write_delta(text)
            return
        self._pending = text
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_later(max(wait, 0.0)))

    async def _flush_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        text, self._pending = self._pending, None
        try:
            if text is not None and not self._finished:
                await self._write_delta(text)
        finally:
            self._flusher = None

    async def _write_delta(self, text: str) -> None:
        self._last_write = self.clock()
        self._last_text = text
        event = {"type": "delta", "stream_id": self.stream_id, "text": text,
                 "format": self._template.format}
        self._delta_ids.append(await self._adapter.append(self._template.conversation, event))

    async def finish(self, text: str) -> SendResult:
        """Write the final ``message`` event, then drop this stream's deltas from history."""
        self._finished = True
        flusher = self._flusher
        if flusher is not None:
            # The final text supersedes the pending delta: do not hold the turn for it. A
            # delta that still lands is ignored by readers (its stream has finished).
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flusher
        event = _message_event(self._template, text, self.stream_id)
        entry_id = await self._adapter.append_once(self._template.conversation, event,
                                                   self.stream_id)
        if self._delta_ids:
            key = self._adapter.outbox_key(self._template.conversation)
            await self._adapter.deps.redis.xdel(key, *self._delta_ids)
        return SendResult(message_id=entry_id, extra={"stream_id": self.stream_id})
