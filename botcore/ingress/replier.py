"""Replies that are sent at most once per idempotency key, even when a turn is re-run."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from redis.asyncio import Redis

from botcore.channel import BufferedStream, ChannelAdapter, MessageStream
from botcore.errors import LeaseLostError
from botcore.keys import KeyBuilder
from botcore.message import OutboundMessage, SendResult

__all__ = ["Fence", "IdempotentReplier", "current_fence"]

_DONE = b"done"
_RECORD_TTL = 86_400
# KEYS: sent record[, lease]. ARGV: ttl[, fencing token]. -1 when the lease is someone
# else's, 0 when the reply was delivered before, else marks it sending and returns 1.
_BEGIN = """
if #KEYS > 1 and redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
if redis.call('GET', KEYS[1]) == 'done' then return 0 end
redis.call('SET', KEYS[1], 'sending', 'EX', ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a turn runs under: its Redis key and this worker's fencing token."""

    key: str
    token: int


#: Set by the drain loop around each turn (context-local, so concurrent drains in one
#: process each see their own); replies check it in the same script that marks them.
current_fence: ContextVar[Fence | None] = ContextVar("botcore_fence", default=None)


class _DoneStream:
    """This reply was delivered before a crash: show nothing again."""

    async def update(self, text: str) -> None:
        return None

    async def finish(self, text: str) -> SendResult:
        return SendResult(extra={"skipped": True})


class _RecordingStream:
    def __init__(self, inner: MessageStream, mark_done: OutboundMessage,
                 replier: IdempotentReplier) -> None:
        self._inner = inner
        self._message = mark_done
        self._replier = replier

    async def update(self, text: str) -> None:
        await self._inner.update(text)

    async def finish(self, text: str) -> SendResult:
        result = await self._inner.finish(text)
        await self._replier.mark_done(self._message)
        return result


class IdempotentReplier:
    """Sends through an adapter and records each reply in Redis (``sent:`` keys).

    ``sending`` is written before the platform call and ``done`` after; a re-run skips a
    ``done`` reply. A crash inside the platform call can still repeat that one reply where
    the platform has no idempotency key of its own (Feishu has ``uuid``), and only then.

    Fencing: inside a drain, the same script checks that this worker still holds the
    conversation's lease (:data:`current_fence`). A worker that stalled past the lease TTL
    while another took the conversation over gets :class:`~botcore.errors.LeaseLostError`
    instead of sending a second answer.
    """

    def __init__(self, adapter: ChannelAdapter, redis: Redis, keys: KeyBuilder) -> None:
        self._adapter = adapter
        self._redis = redis
        self._keys = keys
        self.skipped = 0

    async def _begin(self, message: OutboundMessage) -> bool:
        """Mark the reply ``sending`` unless it is ``done``; True if it must be sent."""
        sent = self._keys.sent(message.idempotency_key)
        fence = current_fence.get()
        if fence is None:
            return bool(await self._redis.eval(_BEGIN, 1, sent, _RECORD_TTL))
        state = await self._redis.eval(_BEGIN, 2, sent, fence.key, _RECORD_TTL, str(fence.token))
        if int(state) < 0:
            raise LeaseLostError(fence.key, fence.token)
        return bool(state)

    async def mark_done(self, message: OutboundMessage) -> None:
        """Record that ``message`` reached the platform."""
        await self._redis.set(self._keys.sent(message.idempotency_key), _DONE, ex=_RECORD_TTL)

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send unless this reply was already delivered."""
        if not await self._begin(message):
            self.skipped += 1
            return SendResult(extra={"skipped": True})
        result = await self._adapter.send(message)
        await self.mark_done(message)
        return result

    async def open_stream(self, message: OutboundMessage) -> MessageStream:
        """A stream recorded like a reply; a no-op one if it was delivered already."""
        if not await self._begin(message):
            self.skipped += 1
            return _DoneStream()
        inner = self._adapter.open_stream(message) or BufferedStream(self._adapter.send, message)
        return _RecordingStream(inner, message, self)
