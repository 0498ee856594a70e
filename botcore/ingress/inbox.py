"""The per-conversation inbox: the durable write behind every acknowledgement.

One Lua script does dedupe → append → mark dirty → claim the schedule flag atomically, so a
crash leaves either nothing or a complete entry, and a redelivery stops at the dedupe
(reliability.md 2.2). The worker pops a message only after its reply is recorded, under its
lease's fencing token.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError

from botcore.errors import IngressError
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage

__all__ = ["Admission", "Envelope", "Inbox"]

# KEYS: dedupe, inbox, dirty, scheduled, lease, broker queue, rate bucket. ARGV:
# dedupe_ttl_s, payload, conv_id, schedule_ms, drain task message ('' for none),
# limit per minute (0 for none), now (s). While a drain holds the lease no task is needed:
# the holder only lets go when the inbox is empty (_RELEASE_IF_EMPTY).
# Returns -1 over the conversation's limit (nothing stored), 0 duplicate, 1 stored,
# 2 stored and the caller must schedule a drain, 3 stored and the drain task pushed.
_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local limit = tonumber(ARGV[6])
if limit > 0 then
  local now = tonumber(ARGV[7])
  local state = redis.call('HMGET', KEYS[7], 'tokens', 'ts')
  local tokens = tonumber(state[1]) or limit
  local ts = tonumber(state[2]) or now
  tokens = math.min(limit, tokens + math.max(0, now - ts) * limit / 60)
  if tokens < 1 then return -1 end
  redis.call('HSET', KEYS[7], 'tokens', tokens - 1, 'ts', now)
  redis.call('PEXPIRE', KEYS[7], 61000)
end
redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('EXISTS', KEYS[5]) == 1 then return 1 end
if redis.call('SET', KEYS[4], '1', 'NX', 'PX', ARGV[4]) then
  if ARGV[5] ~= '' then redis.call('LPUSH', KEYS[6], ARGV[5]); return 3 end
  return 2
end
return 1
"""
# KEYS: lease, inbox[, attempts counter to delete]. ARGV: token, n, head. Pops n entries if
# we hold the lease and the head is still the entry we processed (then forgets the attempt
# counter). Returns 1 popped, 0 lease lost, -1 head changed.
_POP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[3] then return -1 end
redis.call('LPOP', KEYS[2], tonumber(ARGV[2]))
if KEYS[3] then redis.call('DEL', KEYS[3]) end
return 1
"""
# KEYS: lease, inbox, dirty, dlq. ARGV: token, head, conv_id, dead_letter_json, keep.
# The list keeps the newest ``keep`` records (it must not grow without bound).
_DEAD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[2] then return -1 end
redis.call('LPOP', KEYS[2])
redis.call('RPUSH', KEYS[4], ARGV[4])
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[5]), -1)
return 1
"""
# KEYS: dlq, inbox, dirty, attempts. ARGV: dead_letter_json, entry_json, conv_id.
# Atomic: of two replays of one record only the one that removed it re-queues it.
_REPLAY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[4])
return 1
"""
#: Dead letters kept (the newest); older ones are dropped when a new one is written.
DEAD_LETTERS_KEPT = 10_000
# KEYS: lease, inbox, dirty. ARGV: token, conv_id.
# Releases the lease only when the inbox is empty (else the drain goes on): no message can
# slip in between "inbox empty" and "lease released".
_RELEASE_IF_EMPTY = """
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[3], ARGV[2])
return 1
"""
# KEYS: inbox, lease, scheduled, dirty. ARGV: conv_id, schedule_ms.
# 1: the sweeper must schedule a drain; 0: nothing to do (empty, leased, or queued).
_SWEEP = """
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[4], ARGV[1]); return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class Envelope(BaseModel):
    """What an inbox entry holds: versioned JSON, the only thing that crosses the queue."""

    v: int = 1
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    received_at: float = Field(default_factory=time.time)
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    message: InboundMessage

    @classmethod
    def wrap(cls, message: InboundMessage) -> Envelope:
        """Wrap a message; the raw payload stays out of Redis (debug-only, may hold PII)."""
        return cls(message=message.model_copy(update={"raw": None}))


@dataclass(frozen=True, slots=True)
class Admission:
    """The outcome of :meth:`Inbox.admit`."""

    duplicate: bool
    schedule: bool
    conversation_id: str
    pushed: bool = False
    limited: bool = False


class Inbox:
    """Inbox operations on one Redis; shared by the web process and the worker."""

    def __init__(self, redis: Redis, keys: KeyBuilder, *, dedupe_ttl: int = 86_400,
                 schedule_ttl: float = 15.0) -> None:
        self.redis = redis
        self.keys = keys
        self.dedupe_ttl = dedupe_ttl
        self.schedule_ms = int(schedule_ttl * 1000)
        self._admit = redis.register_script(_ADMIT)
        self._pop = redis.register_script(_POP)
        self._dead = redis.register_script(_DEAD)
        self._release = redis.register_script(_RELEASE_IF_EMPTY)
        self._sweep = redis.register_script(_SWEEP)

    async def admit(self, message: InboundMessage, *,
                    drain_task: tuple[str, str] | None = None,
                    limit_per_minute: int = 0) -> Admission:
        """Store ``message`` durably unless it was seen before.

        Args:
            message: the inbound message.
            drain_task: ``(broker list key, task message)``: when this message claims the
                schedule flag, the script pushes the drain task too (atomically).
            limit_per_minute: messages the conversation may add a minute (0: no limit);
                over it nothing is stored and ``Admission.limited`` is set.

        Raises:
            IngressError: Redis could not be written; answer 503 so the platform retries.
        """
        conv = message.conversation.id
        queue, task = drain_task or (self.keys.inbox(conv), "")
        keys = [self.keys.dedupe(message.dedupe_key), self.keys.inbox(conv),
                self.keys.dirty(), self.keys.scheduled(conv), self.keys.lease(conv), queue,
                self.keys.rate("admit", conv)]
        args: list[str | int | float] = [
            self.dedupe_ttl, Envelope.wrap(message).model_dump_json(), conv, self.schedule_ms,
            task, limit_per_minute, time.time()]
        try:
            code = await self._admit(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise IngressError(f"could not store the message durably: {type(exc).__name__}"
                               ) from exc
        return Admission(duplicate=code == 0, schedule=code == 2, conversation_id=conv,
                         pushed=code == 3, limited=code == -1)

    async def head(self, conversation_id: str, count: int = 1) -> list[bytes]:
        """The oldest ``count`` raw entries."""
        found = await self.redis.lrange(self.keys.inbox(conversation_id), 0, count - 1)
        return [item if isinstance(item, bytes) else item.encode() for item in found]

    async def pop(self, conversation_id: str, token: int, head: bytes, count: int = 1, *,
                  attempts_of: str | None = None) -> int:
        """Pop ``count`` entries if the lease is ours and ``head`` is still first; also
        forget the attempt counter of envelope ``attempts_of``."""
        keys = [self.keys.lease(conversation_id), self.keys.inbox(conversation_id)]
        if attempts_of is not None:
            keys.append(self.keys.attempts(conversation_id, attempts_of))
        return int(await self._pop(keys=keys, args=[token, count, head]))

    async def count_start(self, conversation_id: str, envelope_id: str) -> tuple[int, int]:
        """Count one more start of this envelope's turn; returns ``(starts, failures)``.

        ``starts - 1 - failures`` earlier starts ended without success or failure: the
        worker died during them.
        """
        key = self.keys.attempts(conversation_id, envelope_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(key, "starts", 1)
        pipe.hget(key, "failures")
        pipe.expire(key, 86_400)
        starts, failures, _ = await pipe.execute()
        return int(starts), int(failures or 0)

    async def count_failure(self, conversation_id: str, envelope_id: str) -> int:
        """Count a turn that raised; returns the failures so far."""
        key = self.keys.attempts(conversation_id, envelope_id)
        return int(await self.redis.hincrby(key, "failures", 1))

    async def dead_letter(self, conversation_id: str, token: int, head: bytes,
                          error: str, attempts: int) -> int:
        """Move the head to the dead-letter list with its error."""
        try:
            entry: Any = json.loads(head)
        except ValueError:  # a corrupt entry: keep its text for the operator
            entry = {"unreadable": head.decode("utf-8", errors="replace")[:10_000]}
        record = json.dumps({"conversation_id": conversation_id, "error": error[:2000],
                             "attempts": attempts, "failed_at": time.time(),
                             "entry": entry}, ensure_ascii=False)
        keys = [self.keys.lease(conversation_id), self.keys.inbox(conversation_id),
                self.keys.dirty(), self.keys.dead_letters()]
        return int(await self._dead(keys=keys, args=[token, head, conversation_id, record,
                                                           DEAD_LETTERS_KEPT]))

    async def release_if_empty(self, conversation_id: str, token: int) -> bool:
        """Release the lease if the inbox is empty; False means there is more to drain."""
        keys = [self.keys.lease(conversation_id), self.keys.inbox(conversation_id),
                self.keys.dirty()]
        return bool(await self._release(keys=keys, args=[token, conversation_id]))

    async def needs_drain(self, conversation_id: str) -> bool:
        """Sweeper check: pending messages, no lease, no queued drain (then claims the flag)."""
        keys = [self.keys.inbox(conversation_id), self.keys.lease(conversation_id),
                self.keys.scheduled(conversation_id), self.keys.dirty()]
        return bool(await self._sweep(keys=keys, args=[conversation_id, self.schedule_ms]))

    async def dirty(self) -> list[str]:
        """Conversations that may hold pending messages."""
        return [_text(item) async for item in self.redis.sscan_iter(self.keys.dirty(),
                                                                    count=500)]

    async def stats(self) -> dict[str, Any]:
        """Depth per bot, oldest message age, dead letters: for ``botcore inbox stats``."""
        now = time.time()
        per_bot: dict[str, dict[str, float]] = {}
        for conv in await self.dirty():
            depth = await self.redis.llen(self.keys.inbox(conv))
            if not depth:
                continue
            first = await self.redis.lindex(self.keys.inbox(conv), 0)
            age = now - Envelope.model_validate_json(first).received_at if first else 0.0
            bot = ":".join(conv.split(":", 2)[:2])
            entry = per_bot.setdefault(bot, {"conversations": 0, "depth": 0, "oldest_age": 0.0})
            entry["conversations"] += 1
            entry["depth"] += depth
            entry["oldest_age"] = max(entry["oldest_age"], age)
        dead = await self.redis.llen(self.keys.dead_letters())
        return {"bots": per_bot, "dead_letters": dead}

    async def dead_letters(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest dead letters (with their error)."""
        raw = await self.redis.lrange(self.keys.dead_letters(), -limit, -1)
        return [json.loads(item) for item in raw]

    async def replay(self, envelope_id: str) -> bool:
        """Put a dead letter back at the tail of its conversation's inbox."""
        for raw in await self.redis.lrange(self.keys.dead_letters(), 0, -1):
            record = json.loads(raw)
            if record["entry"].get("id") != envelope_id:
                continue
            conv = record["conversation_id"]
            moved = await self.redis.eval(
                _REPLAY, 4, self.keys.dead_letters(), self.keys.inbox(conv), self.keys.dirty(),
                self.keys.attempts(conv, envelope_id),
                raw, json.dumps(record["entry"], ensure_ascii=False), conv)
            return bool(moved)
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
