"""Outbound plumbing on a real Redis: rate limiter, shared token cache, retry policy."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from redis.asyncio import Redis

from botcore.errors import (
    ChannelApiError,
    ChannelAuthError,
    ChannelRateLimited,
    ChannelUnavailable,
)
from botcore.keys import KeyBuilder
from botcore.outbound import RateLimiter, TokenCache, send_with_retry


# rate limiter ----------------------------------------------------------------------------
async def test_rate_limiter_burst_then_wait(redis: Redis, keys: KeyBuilder) -> None:
    limiter = RateLimiter(redis, keys, "wecom", rate=2, burst=3)
    assert [await limiter.reserve("chat-1") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = await limiter.reserve("chat-1")
    assert 0.3 < wait <= 0.5
    assert await limiter.reserve("chat-2") == 0.0  # scopes are separate buckets
    assert await redis.exists(keys.rate("wecom", "chat-1"))
    assert 0 < await redis.pttl(keys.rate("wecom", "chat-1")) <= 2500


async def test_rate_limiter_refills(redis: Redis, keys: KeyBuilder) -> None:
    limiter = RateLimiter(redis, keys, "wecom", rate=20, burst=1)
    assert await limiter.reserve("s") == 0.0
    assert await limiter.reserve("s") > 0
    await asyncio.sleep(0.06)
    assert await limiter.reserve("s") == 0.0


async def test_rate_limiter_shared_between_instances(redis: Redis, keys: KeyBuilder) -> None:
    first = RateLimiter(redis, keys, "feishu", rate=1, burst=1)
    second = RateLimiter(redis, keys, "feishu", rate=1, burst=1)
    assert await first.reserve("app") == 0.0
    assert await second.reserve("app") > 0


async def test_rate_limiter_acquire_waits(redis: Redis, keys: KeyBuilder) -> None:
    limiter = RateLimiter(redis, keys, "x", rate=10, burst=1)
    started = time.monotonic()
    await limiter.acquire("s")
    await limiter.acquire("s")
    assert 0.05 < time.monotonic() - started < 1.0


async def test_rate_limiter_acquire_gives_up_past_max_wait(redis: Redis,
                                                           keys: KeyBuilder) -> None:
    limiter = RateLimiter(redis, keys, "x", rate=0.1, burst=1)
    await limiter.acquire("s")
    with pytest.raises(ChannelRateLimited) as info:
        await limiter.acquire("s", max_wait=0.5)
    assert info.value.retry_after > 5


# token cache ---------------------------------------------------------------------------
class _Fetcher:
    def __init__(self, *lifetimes: float, delay: float = 0.1) -> None:
        self.lifetimes = list(lifetimes)
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> tuple[str, float]:
        self.calls += 1
        await asyncio.sleep(self.delay)
        return f"tok-{self.calls}", self.lifetimes[min(self.calls, len(self.lifetimes)) - 1]


async def test_token_fetched_once_for_concurrent_gets(redis: Redis, keys: KeyBuilder) -> None:
    fetch = _Fetcher(7200)
    caches = [TokenCache(redis, keys, "wecom", "corp1", fetch) for _ in range(4)]  # 4 workers
    tokens = await asyncio.gather(*(caches[i % 4].get() for i in range(20)))
    assert tokens == ["tok-1"] * 20
    assert fetch.calls == 1
    stored = json.loads(await redis.get(keys.token("wecom", "corp1")))
    assert stored["token"] == "tok-1"
    assert 7000 < await redis.ttl(keys.token("wecom", "corp1")) <= 7200


async def test_token_refreshed_when_near_expiry(redis: Redis, keys: KeyBuilder) -> None:
    fetch = _Fetcher(300, 7200, delay=0)
    cache = TokenCache(redis, keys, "feishu", "app", fetch, refresh_margin=600)
    assert await cache.get() == "tok-1"  # only 300 s left: inside the margin
    assert await cache.get() == "tok-2"
    assert await cache.get() == "tok-2"
    assert fetch.calls == 2
    assert cache.fetches == 2


async def test_old_token_served_while_another_worker_refreshes(redis: Redis,
                                                              keys: KeyBuilder) -> None:
    await redis.set(keys.token("x", "a"), json.dumps({"token": "old",
                                                      "expires_at": time.time() + 100}))
    await redis.set(keys.token_lock("x", "a"), "someone-else", ex=15)
    fetch = _Fetcher(7200)
    cache = TokenCache(redis, keys, "x", "a", fetch, refresh_margin=600)
    assert await cache.get() == "old"
    assert fetch.calls == 0


async def test_invalidate(redis: Redis, keys: KeyBuilder) -> None:
    fetch = _Fetcher(7200, delay=0)
    cache = TokenCache(redis, keys, "wecom", "corp1", fetch)
    assert await cache.get() == "tok-1"
    await cache.invalidate("some-other-token")  # already replaced: keep the current one
    assert await cache.get() == "tok-1"
    await cache.invalidate("tok-1")
    assert not await redis.exists(keys.token("wecom", "corp1"))
    assert await cache.get() == "tok-2"
    assert fetch.calls == 2


# send_with_retry -------------------------------------------------------------------------
class _Call:
    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.times: list[float] = []

    async def __call__(self) -> str:
        self.times.append(time.monotonic())
        if self.errors:
            raise self.errors.pop(0)
        return "sent"


async def test_retries_rate_limited_waiting_retry_after() -> None:
    call = _Call(ChannelRateLimited(0.3), ChannelRateLimited(0.1))
    assert await send_with_retry(call) == "sent"
    assert len(call.times) == 3
    assert call.times[1] - call.times[0] >= 0.29
    assert 0.09 <= call.times[2] - call.times[1] < 0.3


async def test_retries_one_auth_error_only() -> None:
    call = _Call(ChannelAuthError(40014, "invalid access_token"))
    assert await send_with_retry(call) == "sent"
    assert len(call.times) == 2
    twice = _Call(ChannelAuthError(40014, "a"), ChannelAuthError(40014, "b"))
    with pytest.raises(ChannelAuthError, match="b"):
        await send_with_retry(twice)
    assert len(twice.times) == 2


async def test_never_retries_plain_api_error() -> None:
    call = _Call(ChannelApiError(40008, "invalid message type"))
    with pytest.raises(ChannelApiError) as info:
        await send_with_retry(call)
    assert info.value.errcode == 40008
    assert len(call.times) == 1


async def test_retries_unavailable_and_gives_up_after_attempts() -> None:
    call = _Call(*[ChannelRateLimited(0.01) for _ in range(5)])
    with pytest.raises(ChannelRateLimited):
        await send_with_retry(call, attempts=3)
    assert len(call.times) == 3
    flaky = _Call(ChannelUnavailable("502"))
    assert await send_with_retry(flaky) == "sent"
    assert len(flaky.times) == 2


async def test_other_exceptions_are_not_retried() -> None:
    call = _Call(ValueError("bug"))
    with pytest.raises(ValueError, match="bug"):
        await send_with_retry(call)
    assert len(call.times) == 1
