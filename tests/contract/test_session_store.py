"""One SessionStore contract, run over every implementation (style rule R6)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from botcore.message import ConversationKey
from botcore.sessions import HistoryEntry, Session, SessionStore, estimate_tokens
from botcore.sessions.memory import InMemorySessionStore
from botcore.sessions.redis import RedisSessionStore

KEY = ConversationKey(channel="web", bot_id="bot", chat_id="c1")
OTHER = ConversationKey(channel="web", bot_id="bot", chat_id="c2", user_id="u9")
StoreFactory = Callable[..., SessionStore]


@pytest.fixture(params=["redis", "memory"])
def make_store(request: pytest.FixtureRequest) -> StoreFactory:
    """Build a store of the parametrized kind with the given limits."""
    if request.param == "memory":
        return InMemorySessionStore
    redis: Redis = request.getfixturevalue("redis")
    keys: KeyBuilder = request.getfixturevalue("keys")

    def build(**options: int) -> SessionStore:
        return RedisSessionStore(redis, keys, **options)

    return build


def _user(text: str) -> HistoryEntry:
    return HistoryEntry(role="user", content=text)


async def test_implements_protocol(make_store: StoreFactory) -> None:
    assert isinstance(make_store(), SessionStore)


async def test_history_append_keeps_order(make_store: StoreFactory) -> None:
    store = make_store()
    assert await store.history(KEY) == []
    await store.append(KEY, _user("a"), HistoryEntry(role="assistant", content="b"))
    await store.append(KEY, _user("c"))
    await store.append(KEY)  # nothing to add
    history = await store.history(KEY)
    assert [(e.role, e.content) for e in history] == [("user", "a"), ("assistant", "b"),
                                                      ("user", "c")]
    assert await store.history(OTHER) == []


async def test_history_round_trips_fields(make_store: StoreFactory) -> None:
    store = make_store()
    entry = HistoryEntry(role="user", content="你好 👋", name="张三", ts=123.5)
    await store.append(KEY, entry)
    assert await store.history(KEY) == [entry]


async def test_trim_by_max_turns(make_store: StoreFactory) -> None:
    store = make_store(max_turns=3)
    for i in range(5):
        await store.append(KEY, _user(str(i)))
    assert [e.content for e in await store.history(KEY)] == ["2", "3", "4"]
    await store.append(KEY, _user("5"), _user("6"))
    assert [e.content for e in await store.history(KEY)] == ["4", "5", "6"]


async def test_trim_by_token_budget_counts_chinese_per_character(
        make_store: StoreFactory) -> None:
    line = "一二三四五六七八九十"  # 10 CJK characters
    assert estimate_tokens(line) == 11
    assert estimate_tokens("abcdefghij") == 4  # ~4 chars per token otherwise
    store = make_store(max_tokens=25)
    for tag in ("甲", "乙", "丙"):
        await store.append(KEY, _user(tag + line))  # 12 tokens each
    assert [e.content[0] for e in await store.history(KEY)] == ["乙", "丙"]


async def test_an_entry_over_the_whole_budget_keeps_its_newest_part(
        make_store: StoreFactory) -> None:
    store = make_store(max_tokens=10)
    await store.append(KEY, _user("旧"), _user("一二三四五六七八九十" * 3))
    history = await store.history(KEY)
    assert len(history) == 1  # not an empty history
    assert history[0].content == ("一二三四五六七八九十" * 3)[-10:]


async def test_trim_by_token_budget_keeps_ascii_that_fits(make_store: StoreFactory) -> None:
    store = make_store(max_tokens=25)
    for i in range(3):
        await store.append(KEY, _user(f"{i}" * 20))  # 6 tokens each
    assert len(await store.history(KEY)) == 3


async def test_vars_set_get_delete_clear(make_store: StoreFactory) -> None:
    store = make_store()
    assert await store.get_vars(KEY) == {}
    await store.set_vars(KEY, {"lang": "zh", "cart": [1, {"sku": "A"}], "n": 3})
    await store.set_vars(KEY, {"n": 4})
    await store.set_vars(KEY, {})
    assert await store.get_vars(KEY) == {"lang": "zh", "cart": [1, {"sku": "A"}], "n": 4}
    await store.delete_var(KEY, "lang")
    await store.delete_var(KEY, "missing")
    assert await store.get_vars(KEY) == {"cart": [1, {"sku": "A"}], "n": 4}
    await store.append(KEY, _user("x"))
    await store.set_vars(OTHER, {"keep": True})
    await store.clear(KEY)
    assert await store.get_vars(KEY) == {}
    assert await store.history(KEY) == []
    assert await store.get_vars(OTHER) == {"keep": True}


async def test_vars_returned_are_copies(make_store: StoreFactory) -> None:
    store = make_store()
    await store.set_vars(KEY, {"cart": [1]})
    (await store.get_vars(KEY))["cart"].append(2)
    assert await store.get_vars(KEY) == {"cart": [1]}


async def test_session_facade(make_store: StoreFactory) -> None:
    session = Session(make_store(), KEY)
    assert await session.get("x", "default") == "default"
    await session.set("x", {"a": 1})
    assert await session.get("x") == {"a": 1}
    await session.append(_user("hi"))
    assert [e.content for e in await session.history()] == ["hi"]
    await session.delete("x")
    assert await session.get("x") is None
    await session.clear()
    assert await session.history() == []


async def test_session_expires_after_ttl(make_store: StoreFactory) -> None:
    store = make_store(ttl=1)
    await store.append(KEY, _user("x"))
    await store.set_vars(KEY, {"a": 1})
    await asyncio.sleep(1.2)
    assert await store.history(KEY) == []
    assert await store.get_vars(KEY) == {}


async def test_lease_acquire_renew_release(make_store: StoreFactory) -> None:
    store = make_store()
    lease = await store.acquire_lease(KEY, 5)
    assert lease is not None
    assert await store.acquire_lease(KEY, 5) is None
    other = await store.acquire_lease(OTHER, 5)  # leases are per conversation
    assert other is not None
    assert await lease.renew() is True
    await lease.release()
    again = await store.acquire_lease(KEY, 5)
    assert again is not None
    assert again.token > lease.token
    assert await lease.renew() is False  # released: the old token is gone


async def test_lease_expiry_fences_the_old_holder(make_store: StoreFactory) -> None:
    store = make_store()
    old = await store.acquire_lease(KEY, 0.2)
    assert old is not None
    await asyncio.sleep(0.3)
    new = await store.acquire_lease(KEY, 5)
    assert new is not None
    assert new.token > old.token
    assert await old.renew() is False
    await old.release()  # must not release the new holder's lease
    assert await store.acquire_lease(KEY, 5) is None
    assert await new.renew() is True


async def test_lease_expired_without_new_holder_cannot_renew(make_store: StoreFactory) -> None:
    store = make_store()
    lease = await store.acquire_lease(KEY, 0.1)
    assert lease is not None
    await asyncio.sleep(0.2)
    assert await lease.renew() is False


# Redis only: TTL on every write --------------------------------------------------------
async def test_redis_ttl_set_on_every_write(redis: Redis, keys: KeyBuilder) -> None:
    store = RedisSessionStore(redis, keys, ttl=1000)
    history, variables = keys.session(KEY.id, "history"), keys.session(KEY.id, "vars")
    await store.append(KEY, _user("x"))
    assert 990 < await redis.ttl(history) <= 1000
    await store.set_vars(KEY, {"a": 1})
    assert 990 < await redis.ttl(variables) <= 1000
    await redis.expire(history, 10)
    await redis.expire(variables, 10)
    await store.set_vars(KEY, {"b": 2})  # refreshes the whole session
    assert await redis.ttl(history) > 990
    assert await redis.ttl(variables) > 990
    await redis.expire(history, 10)
    await redis.expire(variables, 10)
    await store.append(KEY, _user("y"))
    assert await redis.ttl(history) > 990
    assert await redis.ttl(variables) > 990


async def test_redis_store_works_with_decoded_responses(clean_redis: str,
                                                        keys: KeyBuilder) -> None:
    client = Redis.from_url(clean_redis, decode_responses=True)
    try:
        store = RedisSessionStore(client, keys)
        await store.append(KEY, _user("你好"))
        await store.set_vars(KEY, {"k": "值"})
        assert [e.content for e in await store.history(KEY)] == ["你好"]
        assert await store.get_vars(KEY) == {"k": "值"}
    finally:
        await client.aclose()
