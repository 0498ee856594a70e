"""Fencing: a worker whose lease was taken over never sends a second answer, and a Redis
blip during a turn does not give the lease up (real Redis throughout)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from botcore.errors import LeaseLostError
from botcore.ingress.drain import Drainer, DrainStats
from botcore.ingress.inbox import Envelope, Inbox
from botcore.ingress.replier import Fence, IdempotentReplier, current_fence
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey, OutboundMessage
from botcore.sessions.redis import acquire_lease
from botcore.settings import IngressSettings
from botcore.testing import RecordingAdapter, make_inbound

CONV = "web:bot:chat-1"


def _reply(key: str = "r1") -> OutboundMessage:
    return OutboundMessage(conversation=ConversationKey(channel="web", bot_id="bot",
                                                        chat_id="chat-1"),
                           text="answer", idempotency_key=key)


async def test_a_reply_under_someone_elses_lease_is_not_sent(redis: Redis,
                                                             keys: KeyBuilder) -> None:
    adapter = RecordingAdapter()
    replier = IdempotentReplier(adapter, redis, keys)
    await redis.set(keys.lease(CONV), "7")
    token = current_fence.set(Fence(keys.lease(CONV), 6))
    try:
        with pytest.raises(LeaseLostError, match="held by another worker"):
            await replier.send(_reply())
        with pytest.raises(LeaseLostError):
            await replier.open_stream(_reply("r2"))
    finally:
        current_fence.reset(token)
    assert adapter.sent == []
    assert await redis.get(keys.sent("r1")) is None   # nothing marked: the holder answers
    token = current_fence.set(Fence(keys.lease(CONV), 7))
    try:
        await replier.send(_reply())
    finally:
        current_fence.reset(token)
    assert adapter.texts == ["answer"]


async def test_a_stalled_worker_does_not_answer_twice(redis: Redis, keys: KeyBuilder) -> None:
    """Worker A stalls inside its turn past the lease; B takes the conversation over and
    is about to answer when A wakes up: A's reply is fenced off (it stops without counting
    a failure) and B's goes out. Without fencing A answered for a conversation it no longer
    owned, and where the platform call overlapped, both did."""
    adapter = RecordingAdapter()
    replier = IdempotentReplier(adapter, redis, keys)
    inbox = Inbox(redis, keys)
    stalled = [asyncio.Event(), asyncio.Event()]
    resume = [asyncio.Event(), asyncio.Event()]
    runs = 0

    async def turn(entries: list[Envelope], attempt: int) -> None:
        nonlocal runs
        me, runs = runs, runs + 1
        stalled[me].set()
        await resume[me].wait()
        reply = _reply(OutboundMessage.make_key(entries[0].message.dedupe_key, 0))
        await replier.send(reply.model_copy(update={"text": f"answer from {'AB'[me]}"}))

    async def apologize(entry: Envelope, exc: BaseException | None) -> None:
        raise AssertionError("no apology expected")

    settings = IngressSettings(lease_ttl=1.0)
    await inbox.admit(make_inbound("hello"))
    task_a = asyncio.create_task(Drainer(inbox, settings, turn, apologize).drain(CONV))
    await stalled[0].wait()
    await redis.delete(keys.lease(CONV))  # A's lease expired (a GC pause, a frozen VM...)
    task_b = asyncio.create_task(Drainer(inbox, settings, turn, apologize).drain(CONV))
    await stalled[1].wait()
    resume[0].set()
    stats_a = await task_a
    resume[1].set()
    stats_b = await task_b
    assert adapter.texts == ["answer from B"]
    assert stats_b.turns == 1
    assert (stats_a.turns, stats_a.failures, stats_a.lease_lost) == (0, 0, True)
    assert await redis.llen(keys.inbox(CONV)) == 0


class _FlakyLease:
    """A real Redis lease whose first renewal hits a connection error."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.token = inner.token  # type: ignore[attr-defined]
        self.calls = 0

    async def renew(self) -> bool:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("redis restarting")
        return await self.inner.renew()  # type: ignore[attr-defined,no-any-return]

    async def release(self) -> None:
        await self.inner.release()  # type: ignore[attr-defined]


async def test_a_redis_blip_does_not_give_the_lease_up(redis: Redis, keys: KeyBuilder) -> None:
    lease = await acquire_lease(redis, keys, CONV, 0.8)
    assert lease is not None
    flaky = _FlakyLease(lease)
    drainer = Drainer(Inbox(redis, keys), IngressSettings(lease_ttl=0.8),
                      lambda e, a: asyncio.sleep(0), lambda e, x: asyncio.sleep(0))
    stats = DrainStats()
    renewer = asyncio.create_task(drainer._keep_renewing(flaky, stats))
    await asyncio.sleep(2.0)   # 2.5 TTLs: the lease lives only if renewals went on
    renewer.cancel()
    assert not stats.lease_lost
    assert flaky.calls >= 3
    assert await redis.get(keys.lease(CONV)) == str(lease.token).encode()


async def test_lease_counter_expires(redis: Redis, keys: KeyBuilder) -> None:
    lease = await acquire_lease(redis, keys, CONV, 1.0)
    assert lease is not None
    seq = [k for k in await redis.keys("*") if b"seq" in k]
    assert seq
    for key in seq:
        assert 0 < await redis.ttl(key) <= 7 * 86_400
