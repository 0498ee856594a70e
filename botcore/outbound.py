"""Shared outbound plumbing for adapters: tokens shared by all workers, rate limits across
workers, and one retry policy.

* :class:`TokenCache` keeps a platform access token in Redis, refreshes it early under a lock
  so that one worker fetches while the others keep using the old one, and forgets it when the
  platform says it is invalid.
* :class:`RateLimiter` is a token bucket in Redis (one Lua call), shared by every worker.
* :class:`WindowLimiter` is an exact "at most N in any T seconds" limit (a sliding log in
  Redis), for platforms that drop, rather than refuse, what goes over (WeCom: 30 messages
  a minute and 1000 an hour to one member).
* :func:`send_with_retry` retries what is worth retrying (throttling, 5xx, network errors,
  one token refresh) with full-jitter backoff (tenacity), never content errors.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from botcore.errors import ChannelAuthError, ChannelRateLimited, ChannelUnavailable
from botcore.keys import KeyBuilder

__all__ = ["RateLimiter", "TokenCache", "WindowLimiter", "send_with_retry"]

T = TypeVar("T")

# KEYS: bucket. ARGV: rate (tokens/s), burst, now (s, float), cost.
# Returns 0 when allowed now, else the seconds to wait (as a string float).
_BUCKET = """
local rate = tonumber(ARGV[1]); local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3]); local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
if wait == 0 then
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
end
return tostring(wait)
"""


class RateLimiter:
    """A token bucket per scope, shared by every worker through Redis.

    Args:
        redis: asyncio Redis client.
        keys: key builder.
        channel: the channel id (part of the key).
        rate: tokens per second.
        burst: bucket size.
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, channel: str, *, rate: float,
                 burst: float) -> None:
        self._redis = redis
        self._keys = keys
        self._channel = channel
        self.rate = rate
        self.burst = burst
        self._bucket = redis.register_script(_BUCKET)  # EVALSHA: the script is sent once

    async def reserve(self, scope: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if available now; return 0, or the seconds to wait first."""
        wait = await self._bucket(keys=[self._keys.rate(self._channel, scope)],
                                  args=[self.rate, self.burst, time.time(), cost])
        return float(wait)

    async def acquire(self, scope: str, cost: float = 1.0, *, max_wait: float = 60.0) -> None:
        """Wait until ``cost`` tokens can be taken (at most ``max_wait`` seconds)."""
        deadline = time.monotonic() + max_wait
        while (wait := await self.reserve(scope, cost)) > 0:
            if time.monotonic() + wait > deadline:
                raise ChannelRateLimited(wait, channel=self._channel,
                                         errmsg=f"local limit for {scope}")
            await asyncio.sleep(wait)


# KEYS: one sorted set per window. ARGV: now (ms), member, then (limit, window ms) per key.
# Returns 0 when the send was recorded in every window, else the ms to wait first.
_WINDOWS = """
local now = tonumber(ARGV[1]); local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i]); local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now + 1)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[2])
  redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]) + 1000)
end
return 0
"""


class WindowLimiter:
    """At most ``limit`` sends in any ``seconds`` for each ``(limit, seconds)`` window, per
    scope, shared by every worker (a sorted set of send times per window; one Lua call).

    Unlike :class:`RateLimiter`'s bucket, which lets a burst through on top of its rate,
    this never exceeds the count in any window: use it where the platform silently drops
    what goes over.

    Args:
        redis: asyncio Redis client.
        keys: key builder.
        channel: the channel id (part of the key).
        windows: ``(limit, seconds)`` pairs, e.g. ``((30, 60), (1000, 3600))``.
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, channel: str, *,
                 windows: tuple[tuple[int, float], ...]) -> None:
        if not windows or any(limit < 1 or seconds <= 0 for limit, seconds in windows):
            raise ValueError("windows must be (limit >= 1, seconds > 0) pairs")
        self._keys = keys
        self._channel = channel
        self.windows = windows
        self._script = redis.register_script(_WINDOWS)
        self._seq = 0

    async def reserve(self, scope: str) -> float:
        """Record one send now if every window allows it; return 0, or seconds to wait."""
        self._seq += 1
        now_ms = int(time.time() * 1000)
        keys = [self._keys.rate(self._channel, f"{scope}:w{int(seconds)}")
                for _limit, seconds in self.windows]
        args: list[str | int] = [now_ms, f"{now_ms}:{id(self)}:{self._seq}"]
        for limit, seconds in self.windows:
            args += [limit, int(seconds * 1000)]
        wait_ms = await self._script(keys=keys, args=args)
        return float(wait_ms) / 1000

    async def acquire(self, scope: str, *, max_wait: float = 60.0) -> None:
        """Wait until a send to ``scope`` fits every window (at most ``max_wait`` s)."""
        deadline = time.monotonic() + max_wait
        while (wait := await self.reserve(scope)) > 0:
            if time.monotonic() + wait > deadline:
                raise ChannelRateLimited(wait, channel=self._channel,
                                         errmsg=f"local limit for {scope}")
            await asyncio.sleep(wait)


class TokenCache:
    """An access token cached in Redis, refreshed early by one worker under a lock.

    Args:
        redis: asyncio Redis client.
        keys: key builder.
        channel: channel id; ``app_id`` names the app whose token this is.
        fetch: coroutine returning ``(token, expires_in_seconds)`` from the platform.
        refresh_margin: refresh when fewer seconds than this remain.
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, channel: str, app_id: str,
                 fetch: Callable[[], Awaitable[tuple[str, float]]], *,
                 refresh_margin: float = 600.0) -> None:
        self._redis = redis
        self._key = keys.token(channel, app_id)
        self._lock_key = keys.token_lock(channel, app_id)
        self._fetch = fetch
        self._margin = refresh_margin
        self.fetches = 0

    async def _cached(self) -> tuple[str, float] | None:
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        data = json.loads(raw)
        return str(data["token"]), float(data["expires_at"])

    async def get(self) -> str:
        """A valid token: the cached one, or a fresh one fetched by exactly one worker."""
        for _ in range(100):
            cached = await self._cached()
            now = time.time()
            if cached and cached[1] - now > self._margin:
                return cached[0]
            lock = self._redis.lock(self._lock_key, timeout=15, blocking=False)
            if await lock.acquire():
                try:
                    return await self._refresh()
                finally:
                    await lock.release()
            if cached and cached[1] > now + 5:  # someone refreshes; the old one still works
                return cached[0]
            await asyncio.sleep(0.05)
        raise ChannelUnavailable("timed out waiting for another worker's token refresh")

    async def _refresh(self) -> str:
        cached = await self._cached()  # another worker may have refreshed meanwhile
        if cached and cached[1] - time.time() > self._margin:
            return cached[0]
        token, expires_in = await self._fetch()
        self.fetches += 1
        expires_at = time.time() + expires_in
        await self._redis.set(self._key, json.dumps({"token": token, "expires_at": expires_at}),
                              ex=max(1, int(expires_in)))
        return token

    async def invalidate(self, token: str) -> None:
        """Forget ``token`` (the platform said it is invalid) unless already replaced."""
        cached = await self._cached()
        if cached and cached[0] == token:
            await self._redis.delete(self._key)


_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=20)


def _wait_for(state: RetryCallState) -> float:
    """The server's hint when it gave one, else full-jitter exponential backoff."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, ChannelRateLimited):
        return max(0.0, exc.retry_after)
    if isinstance(exc, ChannelAuthError):
        return 0.0  # the retry fetches a fresh token: nothing to wait for
    return float(_BACKOFF(state))


async def send_with_retry(call: Callable[[], Awaitable[T]], *, attempts: int = 6,
                          deadline: float = 120.0) -> T:
    """Run ``call``, retrying throttling (waiting the server's hint), 5xx, network errors and
    one token refresh (on ``ChannelAuthError``; ``call`` must fetch a fresh token itself).

    Content errors (:class:`~botcore.errors.ChannelApiError` other than these) are raised at
    once: sending the same bad request again cannot succeed.
    """
    auth_failures = 0

    def worth_retrying(exc: BaseException) -> bool:
        nonlocal auth_failures
        if isinstance(exc, ChannelAuthError):
            auth_failures += 1
            return auth_failures <= 1
        return isinstance(exc, ChannelRateLimited | ChannelUnavailable)

    async for attempt in AsyncRetrying(
        retry=retry_if_exception(worth_retrying),
        wait=_wait_for,
        # stop_before_delay: never start a wait (e.g. a 600 s retry_after) that would end
        # past the deadline; the error goes up instead and the drain decides.
        stop=stop_after_attempt(attempts) | stop_before_delay(deadline),
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover
