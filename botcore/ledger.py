"""What parts of a reply already reached the platform, shared by every worker.

A turn that is re-run (a worker died, a send failed half-way) sends its replies again under
the same idempotency keys. :class:`~botcore.ingress.replier.IdempotentReplier` skips a reply
that was delivered whole; this module covers the inside of one reply, which adapters know:

* :meth:`DeliveryLedger.part` sends part ``n`` of a split reply once: a long answer cut in
  five messages whose fourth failed re-sends parts four and five, not one to five.
* :meth:`DeliveryLedger.stream_handle` / :meth:`~DeliveryLedger.keep_stream_handle` keep the
  platform's handle of a streamed reply (a Feishu card id, a Telegram message id): the re-run
  continues the message the user already sees instead of leaving it half-written next to a
  new one.

Records live ``ttl`` seconds (a day: longer than any re-run). Without an idempotency key
nothing is recorded and every call goes to the platform.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.asyncio import Redis

from botcore.keys import KeyBuilder

__all__ = ["DeliveryLedger"]

#: How long records are kept, seconds.
LEDGER_TTL = 86_400


class DeliveryLedger:
    """Per-part and per-stream delivery records of one channel's replies.

    Args:
        redis: asyncio Redis client.
        keys: key builder (records are ``sent:`` keys).
        channel: the channel id, so adapters never read each other's records.
        ttl: seconds a record is kept.
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, channel: str, *,
                 ttl: int = LEDGER_TTL) -> None:
        self._redis = redis
        self._keys = keys
        self._channel = channel
        self._ttl = ttl

    def _key(self, idempotency_key: str, what: str) -> str:
        return self._keys.sent(f"{idempotency_key}:{self._channel}:{what}")

    async def part(self, idempotency_key: str | None, index: int,
                   call: Callable[[], Awaitable[str]]) -> str:
        """Run ``call`` (which sends part ``index`` and returns its platform id) unless an
        earlier run of this reply delivered that part; return the part's id either way."""
        if not idempotency_key:
            return await call()
        key = self._key(idempotency_key, f"p{index}")
        done = await self._redis.get(key)
        if done is not None:
            return done.decode() if isinstance(done, bytes) else str(done)
        sent_id = await call()
        await self._redis.set(key, sent_id, ex=self._ttl)
        return sent_id

    async def delivered_parts(self, idempotency_key: str | None, count: int) -> int:
        """How many of the first ``count`` parts are recorded as delivered."""
        if not idempotency_key or count <= 0:
            return 0
        found = await self._redis.exists(*[self._key(idempotency_key, f"p{i}")
                                           for i in range(count)])
        return int(found)

    async def stream_handle(self, idempotency_key: str | None) -> dict[str, Any] | None:
        """The handle an earlier run of this streamed reply kept, or None."""
        if not idempotency_key:
            return None
        raw = await self._redis.get(self._key(idempotency_key, "stream"))
        if raw is None:
            return None
        value = json.loads(raw)
        return value if isinstance(value, dict) else None

    async def keep_stream_handle(self, idempotency_key: str | None,
                                 handle: Mapping[str, Any]) -> None:
        """Remember the platform's handle of this streamed reply (JSON-serialisable)."""
        if idempotency_key:
            await self._redis.set(self._key(idempotency_key, "stream"),
                                  json.dumps(dict(handle), ensure_ascii=False), ex=self._ttl)
