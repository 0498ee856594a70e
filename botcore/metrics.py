"""Prometheus metrics at ``GET /metrics``.

The web process counts its own webhooks (a registry per app, no global state). Workers are
separate processes, so they add their counts to one Redis hash after each drain, and the
web process reports those as counters, with the inbox depth and dead letters as gauges.
"""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis

from botcore.keys import KeyBuilder

__all__ = ["WORKER_FIELDS", "WebMetrics", "record_drain", "record_rating", "stored_rating"]

#: Fields of the workers' Redis hash (``keys.metrics()``).
WORKER_FIELDS = ("turns", "turn_failures", "dead_letters")


async def record_drain(redis: Redis, keys: KeyBuilder, *, turns: int, failures: int,
                       dead_letters: int) -> None:
    """Add one drain's counts to the workers' hash (one round trip)."""
    if not (turns or failures or dead_letters):
        return
    pipe = redis.pipeline(transaction=False)
    for field, value in zip(WORKER_FIELDS, (turns, failures, dead_letters), strict=True):
        if value:
            pipe.hincrby(keys.metrics(), field, value)
    await pipe.execute()


_RATING = "rating"


def stored_rating(raw: object) -> str | None:
    """The ``rating`` of a stored feedback record (JSON; what ``SET ... GET`` returned), or
    None."""
    if not isinstance(raw, bytes | str):
        return None
    try:
        value = json.loads(raw).get("rating")
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


async def record_rating(redis: Redis, keys: KeyBuilder, *, kind: str, bot_id: str,
                        rating: str, previous: str | None = None) -> None:
    """Count a user's rating (``kind``: ``widget`` 👍/👎, ``handoff`` 1-5) in the shared
    metrics hash; a changed rating moves its count (``previous``), a repeated one is not
    counted twice."""
    if previous == rating:
        return
    pipe = redis.pipeline(transaction=False)
    pipe.hincrby(keys.metrics(), f"{_RATING}:{kind}:{bot_id}:{rating}", 1)
    if previous is not None:
        pipe.hincrby(keys.metrics(), f"{_RATING}:{kind}:{bot_id}:{previous}", -1)
    await pipe.execute()


class WebMetrics:
    """The web process's registry and instruments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhooks = Counter("botcore_webhook_requests", "Webhook requests by outcome",
                                ["channel", "outcome"], registry=self.registry)
        self.latency = Histogram("botcore_webhook_seconds", "Time to acknowledge a webhook",
                                 ["channel"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1.0))
        self.worker = Gauge("botcore_worker_events", "Totals reported by all workers "
                            "(turns, turn_failures, dead_letters)", ["event"],
                            registry=self.registry)
        self.pending = Gauge("botcore_inbox_pending", "Messages waiting in inboxes",
                             registry=self.registry)
        self.dead = Gauge("botcore_dead_letters", "Messages in the dead-letter list",
                          registry=self.registry)
        self.ratings = Gauge("botcore_ratings", "User ratings by kind (widget up/down, "
                             "handoff 1-5 satisfaction), bot and value",
                             ["kind", "bot", "rating"], registry=self.registry)

    async def render(self, redis: Redis, keys: KeyBuilder) -> bytes:
        """Refresh the Redis-backed gauges and render the text exposition format."""
        totals = await redis.hgetall(keys.metrics())
        for field in WORKER_FIELDS:
            raw = totals.get(field.encode(), totals.get(field, 0))
            self.worker.labels(event=field).set(float(raw or 0))
        for name, count in totals.items():
            text = name.decode() if isinstance(name, bytes) else str(name)
            parts = text.split(":")
            if len(parts) == 4 and parts[0] == _RATING:
                self.ratings.labels(kind=parts[1], bot=parts[2], rating=parts[3]).set(
                    float(count))
        pending = 0
        async for conv in redis.sscan_iter(keys.dirty(), count=500):
            name = conv.decode() if isinstance(conv, bytes) else conv
            pending += int(await redis.llen(keys.inbox(name)))
        self.pending.set(pending)
        self.dead.set(int(await redis.llen(keys.dead_letters())))
        return generate_latest(self.registry)
