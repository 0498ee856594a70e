"""DeliveryLedger: parts of a reply and stream handles survive a re-run (real Redis)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from botcore.ledger import DeliveryLedger


class _Platform:
    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[str] = []
        self.fail_at = fail_at

    def call(self, text: str) -> Callable[[], Awaitable[str]]:
        async def send() -> str:
            if self.fail_at is not None and len(self.sent) == self.fail_at:
                self.fail_at = None
                raise ConnectionError("platform went away")
            self.sent.append(text)
            return f"id-{text}"
        return send


async def test_a_rerun_sends_only_the_parts_not_delivered(redis: Redis, keys: KeyBuilder) -> None:
    ledger = DeliveryLedger(redis, keys, "x")
    platform = _Platform(fail_at=2)
    parts = ["a", "b", "c", "d"]

    async def deliver() -> list[str]:
        return [await ledger.part("reply-1", i, platform.call(p))
                for i, p in enumerate(parts)]

    with pytest.raises(ConnectionError):
        await deliver()
    assert await ledger.delivered_parts("reply-1", 4) == 2
    assert await deliver() == ["id-a", "id-b", "id-c", "id-d"]
    assert platform.sent == ["a", "b", "c", "d"]          # a and b once each
    assert await ledger.delivered_parts("reply-1", 4) == 4


async def test_without_a_key_every_call_goes_out(redis: Redis, keys: KeyBuilder) -> None:
    ledger = DeliveryLedger(redis, keys, "x")
    platform = _Platform()
    for _ in range(2):
        await ledger.part(None, 0, platform.call("a"))
    assert platform.sent == ["a", "a"]
    assert await ledger.delivered_parts(None, 1) == 0


async def test_channels_do_not_share_records(redis: Redis, keys: KeyBuilder) -> None:
    platform = _Platform()
    await DeliveryLedger(redis, keys, "x").part("k", 0, platform.call("a"))
    await DeliveryLedger(redis, keys, "y").part("k", 0, platform.call("a"))
    assert platform.sent == ["a", "a"]


async def test_stream_handle_round_trip_and_ttl(redis: Redis, keys: KeyBuilder) -> None:
    ledger = DeliveryLedger(redis, keys, "x", ttl=60)
    assert await ledger.stream_handle("r") is None
    await ledger.keep_stream_handle("r", {"card_id": "c1", "seq": 3, "text": "部分"})
    assert await ledger.stream_handle("r") == {"card_id": "c1", "seq": 3, "text": "部分"}
    assert 0 < await redis.ttl(keys.sent("r:x:stream")) <= 60
    await ledger.keep_stream_handle(None, {"card_id": "ignored"})
    assert await ledger.stream_handle(None) is None
