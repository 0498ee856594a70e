"""The channel adapter contract: one shape for every platform.

An adapter turns a platform's callback into :class:`~botcore.message.InboundMessage` objects
(``handle_webhook``, no network I/O: it runs before the platform is acknowledged) and sends
:class:`~botcore.message.OutboundMessage` objects back (``send``, in the worker).

Adapters are found by name through the ``botcore.adapters`` entry point group, built once per
bot with ``Adapter(bot_config, deps)``, and never import each other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import httpx
from pydantic import BaseModel

from botcore.message import InboundMessage, OutboundMessage, SendResult

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from botcore.keys import KeyBuilder

__all__ = [
    "Accepted",
    "AdapterDeps",
    "BufferedStream",
    "Challenge",
    "ChannelAdapter",
    "IngestFn",
    "MessageStream",
    "Rejected",
    "WebhookOutcome",
    "WebhookRequest",
]


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """An HTTP callback as the web layer received it: nothing parsed yet."""

    method: str
    headers: Mapping[str, str]  # lower-cased names
    query: Mapping[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Challenge:
    """A URL-verification handshake: answer ``body`` at once, queue nothing."""

    body: bytes | str
    content_type: str = "text/plain"
    status: int = 200


@dataclass(frozen=True, slots=True)
class Rejected:
    """Forged, stale or malformed: answer ``status`` (4xx), queue nothing.

    ``reason`` is short and safe to log (never includes secrets or the body).
    """

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Accepted:
    """Authentic: queue ``messages`` durably, then answer with ``ack_body``.

    ``messages`` may be empty (an authentic event the bot does not handle: answer 200 and
    drop it). ``limit_per_minute`` > 0 caps the messages one conversation may add a minute
    (public channels: a visitor must not spend the model budget); over it, the ingress
    stores nothing and answers 429. It is checked inside the durable write, at no extra cost.
    """

    messages: tuple[InboundMessage, ...]
    ack_body: bytes | str = b""
    content_type: str = "text/plain"
    limit_per_minute: int = 0


WebhookOutcome = Challenge | Rejected | Accepted

#: What a long-connection client calls for each message: the same dedupe → inbox → schedule
#: steps as a webhook. Returns once the message is durable (True) or was a duplicate (False);
#: raises :class:`~botcore.errors.IngressError` when it could not be stored (do not ack then).
IngestFn = Callable[[InboundMessage], Awaitable[bool]]


@dataclass(slots=True)
class AdapterDeps:
    """What botcore hands every adapter: shared clients, built by the runtime, never global."""

    redis: Redis
    http: httpx.AsyncClient
    keys: KeyBuilder
    extra: dict[str, Any] = field(default_factory=dict)


class MessageStream(Protocol):
    """An answer that is written while the model produces it."""

    async def update(self, text: str) -> None:
        """Show ``text`` (the whole answer so far) to the user."""

    async def finish(self, text: str) -> SendResult:
        """Show the final ``text`` and close the stream."""


@runtime_checkable
class ChannelAdapter(Protocol):
    """The contract every channel implements.

    Class attributes:
        channel: the channel id (``wecom``, ``feishu``, ...).
        config_model: the pydantic model of the bot's channel settings; the runtime
            validates ``[bots.<id>]`` against it at start-up, so a wrong key fails early.
    """

    channel: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    async def startup(self) -> None:
        """Open clients, register webhooks; called once per process before use."""

    async def shutdown(self) -> None:
        """Close what ``startup`` opened."""

    async def handle_webhook(self, request: WebhookRequest) -> WebhookOutcome:
        """Verify and parse one callback. No network I/O: it runs before the ack."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send a reply; raise a :class:`~botcore.errors.ChannelError` subclass on failure."""

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        """A stream that updates one message in place, or None where the platform cannot."""


# Optional, for platforms with a long connection (Feishu WebSocket, DingTalk Stream,
# Telegram getUpdates): ``async def listen(self, ingest: IngestFn) -> None`` runs until
# cancelled, calls ``ingest`` for every message and acknowledges the platform only after
# ``ingest`` returned. The worker-side runtime never calls it; ``botcore serve`` does, when
# the bot's ``mode`` is long_connection/stream/polling, or when the adapter has a true
# ``listens`` attribute (a webhook bot that also pulls, like WeCom's WeChat Customer Service).
#
# Optional, for platforms with a "typing…" signal (Telegram sendChatAction):
# ``def typing_indicator(self, message: OutboundMessage) -> AbstractAsyncContextManager[Any]``
# shows it while the worker runs a turn for ``message.conversation`` (``message.context`` is
# the inbound message's ``platform`` dict). It must never raise for a failed signal.


class BufferedStream:
    """The fallback stream for channels that cannot edit a message: sends once, at the end."""

    def __init__(self, send: Callable[[OutboundMessage], Awaitable[SendResult]],
                 template: OutboundMessage) -> None:
        self._send = send
        self._template = template

    async def update(self, text: str) -> None:
        """Nothing to show until the answer is complete."""

    async def finish(self, text: str) -> SendResult:
        """Send the whole answer as one message."""
        return await self._send(self._template.model_copy(update={"text": text}))

