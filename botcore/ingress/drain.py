"""The worker side of the inbox: drain one conversation, in order, under a lease.

``drain(conversation_id)`` takes the conversation's lease (or returns: someone else drains
it), then loops: read the head, count the attempt, run the turn, pop the head only after its
replies are recorded. Failures retry with backoff while the lease is held (so order is
kept); after ``max_attempts`` the message goes to the dead-letter list and the user gets the
apology. The lease is renewed while a turn runs and released only when the inbox is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from botcore.errors import LeaseLostError
from botcore.ingress.inbox import Envelope, Inbox
from botcore.ingress.replier import Fence, current_fence
from botcore.logging import scrub_text
from botcore.metrics import record_drain
from botcore.sessions import Lease
from botcore.sessions.redis import acquire_lease
from botcore.settings import IngressSettings

__all__ = ["DrainStats", "Drainer", "merge_envelopes"]

log = structlog.get_logger("botcore.drain")

#: Runs one turn for the given envelopes (one, or several merged). Raises on failure.
TurnFn = Callable[[list[Envelope], int], Awaitable[None]]
#: Sends the apology for a dead-lettered envelope (best effort).
ApologyFn = Callable[[Envelope, BaseException | None], Awaitable[None]]


@dataclass
class DrainStats:
    """What one drain call did (for logs and tests)."""

    turns: int = 0
    failures: int = 0
    dead_letters: int = 0
    lease_lost: bool = False


#: A burst is merged for at most this many merge windows after its first line.
_MERGE_CAP = 4


def merge_envelopes(entries: list[Envelope], max_merge: int) -> list[Envelope]:
    """The leading run of plain messages from the head's sender (at most ``max_merge``)."""
    first = entries[0]
    merged = [first]
    if first.message.kind != "message":
        return merged
    for entry in entries[1:max_merge]:
        if entry.message.kind != "message" or entry.message.sender.id != first.message.sender.id:
            break
        merged.append(entry)
    return merged


class Drainer:
    """Drains conversations. One per worker process; safe to call concurrently."""

    def __init__(self, inbox: Inbox, settings: IngressSettings, run_turn: TurnFn,
                 apologize: ApologyFn, *, turn_timeout: float | None = None) -> None:
        self.inbox = inbox
        self.settings = settings
        self._run_turn = run_turn
        self._apologize = apologize
        self.turn_timeout = turn_timeout

    async def drain(self, conversation_id: str) -> DrainStats:
        """Process the conversation's inbox until it is empty or the lease is lost."""
        redis, keys = self.inbox.redis, self.inbox.keys
        await redis.delete(keys.scheduled(conversation_id))  # this queued drain has started
        lease = await acquire_lease(redis, keys, conversation_id, self.settings.lease_ttl)
        stats = DrainStats()
        if lease is None:
            return stats  # the holder loops until the inbox is empty
        renewer = asyncio.create_task(self._keep_renewing(lease, stats))
        try:
            while not stats.lease_lost:
                if not await self._step(conversation_id, lease, stats):
                    break
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await record_drain(redis, keys, turns=stats.turns, failures=stats.failures,
                               dead_letters=stats.dead_letters)
        return stats

    async def _keep_renewing(self, lease: Lease, stats: DrainStats) -> None:
        """Renew every third of the TTL; a Redis error is retried sooner, and only a renewal
        refused (someone else holds it) or no success for a whole TTL counts as lost."""
        ttl = self.settings.lease_ttl
        last_ok = time.monotonic()
        interval = ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                held = await lease.renew()
            except Exception as exc:  # Redis restarting or a network blip
                log.warning("lease renewal failed; retrying", token=lease.token,
                            error=type(exc).__name__)
                if time.monotonic() - last_ok < ttl:
                    interval = ttl / 10
                    continue
                held = False
            if not held:
                stats.lease_lost = True
                log.warning("lease lost while draining", token=lease.token)
                return
            last_ok, interval = time.monotonic(), ttl / 3

    async def _step(self, conv: str, lease: Lease, stats: DrainStats) -> bool:
        """Handle the head of the inbox; False when the drain is over."""
        raw_entries = await self.inbox.head(conv, self.settings.max_merge)
        if not raw_entries:
            return not await self.inbox.release_if_empty(conv, lease.token)
        head = raw_entries[0]
        try:
            entries = [Envelope.model_validate_json(head)]
        except ValidationError as exc:
            await self.inbox.dead_letter(conv, lease.token, head, f"unreadable entry: {exc}", 0)
            stats.dead_letters += 1
            return True
        entries += _readable_prefix(raw_entries[1:])  # a bad one waits until it is the head
        batch = await self._batch(conv, entries)
        starts, failures = await self.inbox.count_start(conv, batch[0].id)
        if starts - 1 - failures >= self.settings.max_crashes:  # it keeps killing workers
            return await self._give_up(conv, lease, head, batch[0], None, starts, stats)
        fence = current_fence.set(Fence(self.inbox.keys.lease(conv), lease.token))
        try:
            await asyncio.wait_for(self._run_turn(batch, starts), self.turn_timeout)
        except LeaseLostError:
            log.warning("turn stopped: another worker holds the conversation now",
                        conversation=conv, trace_id=batch[0].trace_id)
            stats.lease_lost = True
            return False
        except Exception as exc:
            stats.failures += 1
            failures = await self.inbox.count_failure(conv, batch[0].id)
            log.warning("turn failed", conversation=conv, attempt=failures,
                        error=type(exc).__name__, detail=scrub_text(str(exc))[:300],
                        trace_id=batch[0].trace_id)
            if failures >= self.settings.max_attempts:
                return await self._give_up(conv, lease, head, batch[0], exc, failures, stats)
            await asyncio.sleep(min(0.2 * 2 ** (failures - 1), 5.0))
            return True
        finally:
            current_fence.reset(fence)
        stats.turns += 1
        popped = await self.inbox.pop(conv, lease.token, head, len(batch),
                                      attempts_of=batch[0].id)
        if popped == 0:
            stats.lease_lost = True
        return popped != 0

    async def _batch(self, conv: str, entries: list[Envelope]) -> list[Envelope]:
        """The head alone, or, with a merge window, the lines its sender typed meanwhile.

        A debounce: the turn starts once the sender has been quiet for ``merge_window``
        seconds after their latest line (or ``max_merge`` lines are in, or
        :data:`_MERGE_CAP` windows have passed since the first line: someone typing
        non-stop still gets an answer).
        """
        window = self.settings.merge_window
        if window <= 0:
            return entries[:1]
        merged = merge_envelopes(entries, self.settings.max_merge)
        deadline = entries[0].received_at + window * _MERGE_CAP
        while len(merged) < self.settings.max_merge:
            quiet_at = min(merged[-1].received_at + window, deadline)
            wait = quiet_at - time.time()
            if wait <= 0:
                break
            await asyncio.sleep(wait)
            raw = await self.inbox.head(conv, self.settings.max_merge)
            entries = entries[:1] + _readable_prefix(raw[1:])  # we hold the lease: same head
            merged = merge_envelopes(entries, self.settings.max_merge)
        return merged

    async def _give_up(self, conv: str, lease: Lease, head: bytes, entry: Envelope,
                       exc: BaseException | None, attempts: int, stats: DrainStats) -> bool:
        error = (scrub_text(f"{type(exc).__name__}: {exc}") if exc
                 else f"the worker died during this turn {attempts - 1} times")
        try:
            await self._apologize(entry, exc)
        except Exception as apology_error:  # the dead letter must still be written
            log.warning("apology failed", error=type(apology_error).__name__)
        moved = await self.inbox.dead_letter(conv, lease.token, head, error, attempts)
        await self.inbox.redis.delete(self.inbox.keys.attempts(conv, entry.id))
        stats.dead_letters += 1
        log.error("message dead-lettered", conversation=conv, attempts=attempts,
                  error=type(exc).__name__ if exc else "worker_lost", detail=error[:300],
                  trace_id=entry.trace_id, exc_info=exc)
        return moved != 0


def _readable_prefix(raw_entries: list[bytes]) -> list[Envelope]:
    """The entries up to the first unreadable one (which is dead-lettered as the head)."""
    readable: list[Envelope] = []
    for raw in raw_entries:
        try:
            readable.append(Envelope.model_validate_json(raw))
        except ValidationError:
            break
    return readable
