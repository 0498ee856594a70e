"""The durable inbox on a real Redis: admit, pop, release, sweep, dead letters, replay."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from redis.asyncio import Redis

from botcore.errors import IngressError
from botcore.ingress.inbox import Envelope, Inbox
from botcore.keys import KeyBuilder
from botcore.sessions.redis import acquire_lease
from botcore.testing import make_inbound

CONV = "web:bot:chat-1"


@pytest.fixture
def inbox(redis: Redis, keys: KeyBuilder) -> Inbox:
    return Inbox(redis, keys, dedupe_ttl=600, schedule_ttl=5)


async def _lease_token(inbox: Inbox, conv: str = CONV) -> int:
    lease = await acquire_lease(inbox.redis, inbox.keys, conv, 30)
    assert lease is not None
    return lease.token


async def test_admit_stores_and_schedules_first_only(inbox: Inbox, redis: Redis,
                                                     keys: KeyBuilder) -> None:
    first = await inbox.admit(make_inbound("one", raw={"secret": "x"}))
    second = await inbox.admit(make_inbound("two"))
    assert (first.duplicate, first.schedule, first.conversation_id) == (False, True, CONV)
    assert (second.duplicate, second.schedule) == (False, False)  # the flag is still set
    raw = await redis.lrange(keys.inbox(CONV), 0, -1)
    entries = [Envelope.model_validate_json(item) for item in raw]
    assert [e.message.text for e in entries] == ["one", "two"]
    assert entries[0].message.raw is None  # the raw payload stays out of Redis
    assert await redis.sismember(keys.dirty(), CONV)
    assert 0 < await redis.pttl(keys.scheduled(CONV)) <= 5000
    assert 590 < await redis.ttl(keys.dedupe(entries[0].message.dedupe_key)) <= 600
    await redis.delete(keys.scheduled(CONV))  # a drain started
    third = await inbox.admit(make_inbound("three"))
    assert third.schedule is True


async def test_no_drain_is_scheduled_while_one_holds_the_lease(inbox: Inbox, redis: Redis,
                                                               keys: KeyBuilder) -> None:
    token = await _lease_token(inbox)
    held = await inbox.admit(make_inbound("while a drain runs"))
    assert (held.duplicate, held.schedule, held.pushed) == (False, False, False)
    assert not await redis.exists(keys.scheduled(CONV))
    assert await inbox.release_if_empty(CONV, token) is False  # the holder takes it next


async def test_a_conversation_over_its_limit_stores_nothing(inbox: Inbox, redis: Redis,
                                                            keys: KeyBuilder) -> None:
    admitted = [await inbox.admit(make_inbound(f"m{n}", event_id=f"e{n}"), limit_per_minute=2)
                for n in range(3)]
    assert [a.limited for a in admitted] == [False, False, True]
    assert await redis.llen(keys.inbox(CONV)) == 2
    assert not await redis.exists(keys.dedupe(make_inbound("x", event_id="e2").dedupe_key))
    other = await inbox.admit(make_inbound("elsewhere", chat_id="chat-2"), limit_per_minute=2)
    assert other.limited is False  # per conversation
    retry = await inbox.admit(make_inbound("m1 again", event_id="e1"), limit_per_minute=2)
    assert (retry.duplicate, retry.limited) == (True, False)  # a redelivery is not counted


async def test_duplicate_event_is_not_stored(inbox: Inbox, redis: Redis,
                                             keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("one", event_id="e-1"))
    again = await inbox.admit(make_inbound("one again", event_id="e-1"))
    assert again.duplicate is True
    assert again.schedule is False
    assert await redis.llen(keys.inbox(CONV)) == 1
    other_bot = await inbox.admit(make_inbound("x", event_id="e-1", bot_id="other"))
    assert other_bot.duplicate is False  # the dedupe key includes channel and bot


async def test_pop_needs_lease_token_and_head(inbox: Inbox) -> None:
    for text in ("a", "b", "c"):
        await inbox.admit(make_inbound(text))
    token = await _lease_token(inbox)
    head = (await inbox.head(CONV))[0]
    assert await inbox.pop(CONV, token + 1, head) == 0  # not our lease
    second = (await inbox.head(CONV, 2))[1]
    assert await inbox.pop(CONV, token, second) == -1  # not the head
    assert len(await inbox.head(CONV, 10)) == 3
    assert await inbox.pop(CONV, token, head) == 1
    rest = [Envelope.model_validate_json(r).message.text for r in await inbox.head(CONV, 10)]
    assert rest == ["b", "c"]
    assert await inbox.pop(CONV, token, second, 2) == 1  # "b" is the head now
    assert await inbox.head(CONV) == []


async def test_pop_without_any_lease_fails(inbox: Inbox) -> None:
    await inbox.admit(make_inbound("a"))
    head = (await inbox.head(CONV))[0]
    assert await inbox.pop(CONV, 1, head) == 0


async def test_release_if_empty(inbox: Inbox, redis: Redis, keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("a"))
    token = await _lease_token(inbox)
    assert await inbox.release_if_empty(CONV, token) is False
    assert await redis.exists(keys.lease(CONV))
    assert await redis.sismember(keys.dirty(), CONV)
    await inbox.pop(CONV, token, (await inbox.head(CONV))[0])
    assert await inbox.release_if_empty(CONV, token) is True
    assert not await redis.exists(keys.lease(CONV))
    assert not await redis.sismember(keys.dirty(), CONV)


async def test_release_if_empty_keeps_someone_elses_lease(inbox: Inbox, redis: Redis,
                                                          keys: KeyBuilder) -> None:
    token = await _lease_token(inbox)
    await inbox.release_if_empty(CONV, token + 7)
    assert await redis.get(keys.lease(CONV)) == str(token).encode()


async def test_needs_drain_empty_inbox_leaves_dirty(inbox: Inbox, redis: Redis,
                                                    keys: KeyBuilder) -> None:
    await redis.sadd(keys.dirty(), CONV)
    assert await inbox.needs_drain(CONV) is False
    assert not await redis.sismember(keys.dirty(), CONV)


async def test_needs_drain_leased(inbox: Inbox, redis: Redis, keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("a"))
    await redis.delete(keys.scheduled(CONV))
    await _lease_token(inbox)
    assert await inbox.needs_drain(CONV) is False
    assert not await redis.exists(keys.scheduled(CONV))


async def test_needs_drain_flag_present(inbox: Inbox) -> None:
    await inbox.admit(make_inbound("a"))  # sets the schedule flag
    assert await inbox.needs_drain(CONV) is False


async def test_needs_drain_true_sets_flag(inbox: Inbox, redis: Redis,
                                          keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("a"))
    await redis.delete(keys.scheduled(CONV))  # the queued drain was lost
    assert await inbox.needs_drain(CONV) is True
    assert await redis.exists(keys.scheduled(CONV))
    assert await inbox.needs_drain(CONV) is False  # claimed once
    assert await inbox.dirty() == [CONV]


async def test_dead_letter_and_replay_round_trip(inbox: Inbox, redis: Redis,
                                                 keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("bad", sender="u-7"))
    await inbox.admit(make_inbound("next"))
    token = await _lease_token(inbox)
    head = (await inbox.head(CONV))[0]
    envelope = Envelope.model_validate_json(head)
    await redis.set(keys.attempts(CONV, envelope.id), 3)
    assert await inbox.dead_letter(CONV, token + 1, head, "nope", 3) == 0
    assert await inbox.dead_letter(CONV, token, head, "RuntimeError: boom", 3) == 1
    remaining = [Envelope.model_validate_json(r).message.text for r in await inbox.head(CONV, 5)]
    assert remaining == ["next"]
    records = await inbox.dead_letters()
    assert len(records) == 1
    record = records[0]
    assert record["conversation_id"] == CONV
    assert record["error"] == "RuntimeError: boom"
    assert record["attempts"] == 3
    assert record["entry"]["id"] == envelope.id
    assert record["entry"]["message"]["text"] == "bad"
    assert abs(record["failed_at"] - time.time()) < 60
    assert await inbox.replay("no-such-id") is False
    assert await inbox.replay(envelope.id) is True
    assert await inbox.dead_letters() == []
    texts = [Envelope.model_validate_json(r).message.text for r in await inbox.head(CONV, 5)]
    assert texts == ["next", "bad"]  # back at the tail
    assert not await redis.exists(keys.attempts(CONV, envelope.id))
    assert await redis.sismember(keys.dirty(), CONV)
    replayed = Envelope.model_validate_json((await inbox.head(CONV, 5))[1])
    assert replayed == envelope


async def test_dead_letters_limit_returns_newest(inbox: Inbox, redis: Redis,
                                                 keys: KeyBuilder) -> None:
    for i in range(3):
        await redis.rpush(keys.dead_letters(), json.dumps(
            {"conversation_id": CONV, "error": str(i), "attempts": 1, "entry": {"id": str(i)}}))
    assert [r["error"] for r in await inbox.dead_letters(limit=2)] == ["1", "2"]


async def test_stats_shape(inbox: Inbox, redis: Redis, keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("a", chat_id="c1"))
    await inbox.admit(make_inbound("b", chat_id="c1"))
    await inbox.admit(make_inbound("c", chat_id="c2"))
    await inbox.admit(make_inbound("d", bot_id="other", chat_id="c1"))
    await redis.sadd(keys.dirty(), "web:bot:empty")
    await redis.rpush(keys.dead_letters(), "{}")
    stats = await inbox.stats()
    assert set(stats) == {"bots", "dead_letters"}
    assert stats["dead_letters"] == 1
    assert set(stats["bots"]) == {"web:bot", "web:other"}
    bot = stats["bots"]["web:bot"]
    assert bot["conversations"] == 2
    assert bot["depth"] == 3
    assert 0 <= bot["oldest_age"] < 60
    assert stats["bots"]["web:other"]["depth"] == 1
    json.dumps(stats)  # printable by the CLI


async def test_admit_raises_ingress_error_when_redis_unreachable(keys: KeyBuilder) -> None:
    client = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    try:
        inbox = Inbox(client, keys)
        started = time.monotonic()
        with pytest.raises(IngressError, match="durably"):
            await inbox.admit(make_inbound("a"))
        assert time.monotonic() - started < 10
    finally:
        await client.aclose()


async def test_admit_raises_ingress_error_with_default_client(keys: KeyBuilder) -> None:
    client = Redis.from_url("redis://127.0.0.1:1")
    try:
        with pytest.raises(IngressError):
            await Inbox(client, keys).admit(make_inbound("a"))
    finally:
        await client.aclose()


async def test_dead_letter_list_keeps_the_newest(inbox: Inbox, redis: Redis, keys: KeyBuilder,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import botcore.ingress.inbox as inbox_module

    monkeypatch.setattr(inbox_module, "DEAD_LETTERS_KEPT", 3)
    for n in range(5):
        await inbox.admit(make_inbound(f"bad{n}"))
    token = await _lease_token(inbox)
    for _ in range(5):
        head = (await inbox.head(CONV))[0]
        assert await inbox.dead_letter(CONV, token, head, "boom", 1) == 1
    records = await inbox.dead_letters(limit=10)
    assert [r["entry"]["message"]["text"] for r in records] == ["bad2", "bad3", "bad4"]


async def test_concurrent_replays_requeue_once(inbox: Inbox, redis: Redis,
                                               keys: KeyBuilder) -> None:
    await inbox.admit(make_inbound("bad"))
    token = await _lease_token(inbox)
    head = (await inbox.head(CONV))[0]
    envelope = Envelope.model_validate_json(head)
    await inbox.dead_letter(CONV, token, head, "boom", 3)
    results = await asyncio.gather(*[inbox.replay(envelope.id) for _ in range(5)])
    assert sorted(results) == [False] * 4 + [True]
    assert await redis.llen(keys.inbox(CONV)) == 1
