"""WindowLimiter: never more than N sends in any window, across workers (real Redis)."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from botcore.errors import ChannelRateLimited
from botcore.keys import KeyBuilder
from botcore.outbound import WindowLimiter


async def test_exactly_the_limit_passes_then_it_waits(redis: Redis, keys: KeyBuilder) -> None:
    limiter = WindowLimiter(redis, keys, "wecom", windows=((30, 60),))
    waits = [await limiter.reserve("u1") for _ in range(31)]
    assert waits[:30] == [0.0] * 30
    assert 59 < waits[30] <= 60.01          # until the first send leaves the window
    assert await limiter.reserve("u2") == 0  # another member has its own window


async def test_two_workers_share_the_windows(redis: Redis, keys: KeyBuilder) -> None:
    workers = [WindowLimiter(redis, keys, "wecom", windows=((30, 60), (1000, 3600)))
               for _ in range(2)]
    waits = await asyncio.gather(*[workers[i % 2].reserve("u1") for i in range(40)])
    assert sum(1 for w in waits if w == 0) == 30
    assert await redis.zcard(keys.rate("wecom", "u1:w3600")) == 30


async def test_the_tighter_window_decides(redis: Redis, keys: KeyBuilder) -> None:
    limiter = WindowLimiter(redis, keys, "x", windows=((5, 1), (6, 60)))
    assert [await limiter.reserve("s") for _ in range(5)] == [0.0] * 5
    assert 0 < await limiter.reserve("s") <= 1.01      # the 1 s window is full
    await asyncio.sleep(1.05)
    assert await limiter.reserve("s") == 0             # 6th of the minute
    assert await limiter.reserve("s") > 50             # the minute is full now


async def test_acquire_gives_up_past_max_wait(redis: Redis, keys: KeyBuilder) -> None:
    limiter = WindowLimiter(redis, keys, "x", windows=((1, 60),))
    await limiter.acquire("s")
    with pytest.raises(ChannelRateLimited) as caught:
        await limiter.acquire("s", max_wait=1)
    assert caught.value.retry_after > 59


def test_bad_windows_are_refused(redis: Redis, keys: KeyBuilder) -> None:
    for bad in ((), ((0, 60),), ((5, 0),)):
        with pytest.raises(ValueError, match="windows must be"):
            WindowLimiter(redis, keys, "x", windows=bad)
