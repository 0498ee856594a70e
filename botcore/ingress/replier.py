"""Replies that are sent at most once per idempotency key, even when a turn is re-run."""

from __future__ import annotations

from redis.asyncio import Redis

from botcore.channel import BufferedStream, ChannelAdapter, MessageStream
from botcore.keys import KeyBuilder
from botcore.message import OutboundMessage, SendResult

__all__ = ["IdempotentReplier"]

_DONE = b"done"
_RECORD_TTL = 86_400
# KEYS: sent record. ARGV: ttl. 0 when the reply was delivered before, else marks it sending.
_BEGIN = """
if redis.call('GET', KEYS[1]) == 'done' then return 0 end
redis.call('SET', KEYS[1], 'sending', 'EX', ARGV[1])
return 1
"""


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
    """

    def __init__(self, adapter: ChannelAdapter, redis: Redis, keys: KeyBuilder) -> None:
        self._adapter = adapter
        self._redis = redis
        self._keys = keys
        self.skipped = 0

    async def _already_done(self, message: OutboundMessage) -> bool:
        state = await self._redis.get(self._keys.sent(message.idempotency_key))
        return state == _DONE

    async def _begin(self, message: OutboundMessage) -> bool:
        """Mark the reply ``sending`` unless it is ``done``; True if it must be sent."""
        return bool(await self._redis.eval(_BEGIN, 1, self._keys.sent(message.idempotency_key),
                                           _RECORD_TTL))

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
        if await self._already_done(message):
            self.skipped += 1
            return _DoneStream()
        inner = self._adapter.open_stream(message) or BufferedStream(self._adapter.send, message)
        return _RecordingStream(inner, message, self)
