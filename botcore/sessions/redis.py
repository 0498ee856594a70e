"""Sessions and leases in Redis: history as a list, variables as a hash, TTL on every write."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from botcore.message import ConversationKey
from botcore.sessions import HistoryEntry, Lease, trim_history

if TYPE_CHECKING:
    from botcore.settings import SessionSettings

__all__ = ["RedisLease", "RedisSessionStore"]

# KEYS: lease, seq. ARGV: ttl_ms. Returns the new fencing token, or 0 if the lease is held.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 604800000)  -- a week idle: no holder can be that old
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""
# KEYS: lease. ARGV: token, ttl_ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """A lease held in Redis (see :class:`botcore.sessions.Lease`)."""

    def __init__(self, redis: Redis, key: str, token: int, ttl: float) -> None:
        self._redis = redis
        self.key = key
        self.token = token
        self.ttl_ms = int(ttl * 1000)

    async def renew(self) -> bool:
        """Extend the lease; False if it is no longer ours."""
        ok = await self._redis.eval(_RENEW, 1, self.key, str(self.token), self.ttl_ms)
        return bool(ok)

    async def release(self) -> None:
        """Give the lease up if it is still ours."""
        await self._redis.eval(_RELEASE, 1, self.key, str(self.token))


class RedisSessionStore:
    """The production :class:`~botcore.sessions.SessionStore`.

    Args:
        redis: an asyncio client (``decode_responses=False`` or ``True``: both work).
        keys: the key builder.
        ttl: seconds a session lives after its last write.
        max_turns: history entries kept.
        max_tokens: history token budget (see :func:`~botcore.sessions.estimate_tokens`).
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, *, ttl: int = 7 * 86_400,
                 max_turns: int = 20, max_tokens: int = 4_000) -> None:
        self._redis = redis
        self._keys = keys
        self.ttl = ttl
        self.max_turns = max_turns
        self.max_tokens = max_tokens

    @classmethod
    def from_settings(cls, redis: Redis, keys: KeyBuilder,
                      sessions: SessionSettings) -> RedisSessionStore:
        """The store with the ``[sessions]`` limits (what workers and web routes use)."""
        return cls(redis, keys, ttl=sessions.ttl, max_turns=sessions.max_turns,
                   max_tokens=sessions.max_tokens)

    def _k(self, key: ConversationKey, part: str) -> str:
        return self._keys.session(key.id, part)

    async def history(self, key: ConversationKey) -> list[HistoryEntry]:
        """The kept history, oldest first."""
        raw = await self._redis.lrange(self._k(key, "history"), 0, -1)
        return [HistoryEntry.model_validate_json(item) for item in raw]

    async def append(self, key: ConversationKey, *entries: HistoryEntry) -> None:
        """Add entries, trim to the limits, refresh the TTL."""
        if not entries:
            return
        name = self._k(key, "history")
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(name, *(entry.model_dump_json() for entry in entries))
        pipe.ltrim(name, -self.max_turns, -1)
        pipe.lrange(name, 0, -1)
        pipe.expire(name, self.ttl)
        pipe.expire(self._k(key, "vars"), self.ttl)
        results = await pipe.execute()
        current = [HistoryEntry.model_validate_json(item) for item in results[2]]
        kept = trim_history(current, self.max_turns, self.max_tokens)
        if kept != current:  # over the token budget: keep what trim_history kept
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(name)
            pipe.rpush(name, *(entry.model_dump_json() for entry in kept))
            pipe.expire(name, self.ttl)
            await pipe.execute()

    async def get_vars(self, key: ConversationKey) -> dict[str, Any]:
        """All variables."""
        raw = await self._redis.hgetall(self._k(key, "vars"))
        return {_text(name): json.loads(value) for name, value in raw.items()}

    async def set_vars(self, key: ConversationKey, values: dict[str, Any]) -> None:
        """Set variables and refresh the TTL of the whole session."""
        if not values:
            return
        name = self._k(key, "vars")
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(name, mapping={k: json.dumps(v, ensure_ascii=False) for k, v in values.items()})
        pipe.expire(name, self.ttl)
        pipe.expire(self._k(key, "history"), self.ttl)
        await pipe.execute()

    async def delete_var(self, key: ConversationKey, name: str) -> None:
        """Remove one variable."""
        await self._redis.hdel(self._k(key, "vars"), name)

    async def clear(self, key: ConversationKey) -> None:
        """Forget history and variables."""
        await self._redis.delete(self._k(key, "history"), self._k(key, "vars"))

    async def acquire_lease(self, key: ConversationKey, ttl: float) -> Lease | None:
        """Take the conversation's lease, or None if another drain holds it."""
        return await acquire_lease(self._redis, self._keys, key.id, ttl)


async def acquire_lease(redis: Redis, keys: KeyBuilder, conversation_id: str,
                        ttl: float) -> RedisLease | None:
    """Take ``conversation_id``'s lease for ``ttl`` seconds with a fresh fencing token."""
    lease_key = keys.lease(conversation_id)
    token = int(await redis.eval(_ACQUIRE, 2, lease_key, keys.lease_seq(conversation_id),
                                 int(ttl * 1000)))
    return RedisLease(redis, lease_key, token, ttl) if token else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
