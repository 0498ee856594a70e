"""Chaos plumbing: the killer loop, waiting for replies, and the reconciler."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from bench.common import Services, write_settings
from botcore.keys import KeyBuilder
from botcore.testing.stack import wait_until

__all__ = ["LEASE_TTL", "SWEEP_INTERVAL", "Killer", "Outcome", "reconcile", "wait_replies"]

#: ``ingress.lease_ttl`` and ``ingress.sweep_interval`` of the durable runs, seconds.
LEASE_TTL = 3.0
SWEEP_INTERVAL = 0.5


@dataclass
class Outcome:
    """What a chaos run produced, from the reply streams alone."""

    messages: int
    replies: int = 0
    lost: int = 0
    duplicated: int = 0
    dup_same_id: int = 0
    reordered: int = 0
    kills: int = 0
    skipped_kills: int = 0
    reexecuted: int = 0
    parts: int = 1
    dup_max_answer: int = 0
    in_flight_at_kills: int = 0
    over_one_per_cut: int = 0
    platform_deduped: int = 0
    send_call: str = "sendMessage"
    dup_by_answer: Counter[tuple[str, int]] = field(default_factory=Counter)
    elapsed: float = 0.0
    stopped_by: str = "all replied"
    lost_examples: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        """Distinct answers (all their parts counted once) per second of the run."""
        if not self.elapsed:
            return 0.0
        return (self.replies - self.duplicated) / self.parts / self.elapsed

    @property
    def dup_per_kill(self) -> float:
        """Duplicated replies (or parts) per kill."""
        return self.duplicated / self.kills if self.kills else 0.0


class Killer:
    """Every ``every`` s, SIGKILLs the oldest *ready* worker's process group and starts a new one.

    A worker that is still starting (``ready`` says no) is not killed: with ~3 s start-up on
    a loaded 2-core machine, killing every 2 s regardless would kill workers that never ran
    a task. Ticks that find no ready worker are counted in ``skipped``.
    """

    def __init__(self, services: Services, start: Callable[[], subprocess.Popen[bytes]],
                 workers: list[subprocess.Popen[bytes]], every: float,
                 ready: Callable[[subprocess.Popen[bytes]], Awaitable[bool]]) -> None:
        self.services = services
        self.start = start
        self.workers = workers
        self.every = every
        self.ready = ready
        self.kills = 0
        self.skipped = 0
        self.kill_times: list[float] = []  # wall clock, to compare with a fake's call log
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> Killer:
        if self.every > 0:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            victim = None
            for worker in self.workers:  # oldest first
                if await self.ready(worker):
                    victim = worker
                    break
            if victim is None:
                self.skipped += 1
                continue
            self.workers.remove(victim)
            self.kill_times.append(time.time())
            await asyncio.to_thread(self.services.kill, victim)
            self.kills += 1
            self.workers.append(self.start())


async def _count(redis: Redis, keys: list[str], distinct: bool) -> int:
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        if distinct:
            pipe.xrange(key)
        else:
            pipe.xlen(key)
    results = await pipe.execute()
    if not distinct:
        return sum(results)
    return sum(len({seq for seq, _ in _texts(entries) if seq >= 0}) for entries in results)


async def wait_replies(redis: Redis, keys: list[str], expected: int, stall: float,
                       limit: float, *, distinct: bool = False) -> str:
    """Wait until ``expected`` replies exist, no new one came for ``stall`` s, or ``limit``.

    ``distinct``: count distinct sequence numbers rather than stream entries (where
    duplicates are expected, they must not end the wait before every reply came).
    """
    started = last_change = time.monotonic()
    seen = -1
    while True:
        count = await _count(redis, keys, distinct)
        now = time.monotonic()
        if count >= expected:
            return "all replied"
        if count != seen:
            seen, last_change = count, now
        if now - last_change > stall:
            return f"no new reply for {stall:.0f} s"
        if now - started > limit:
            return f"deadline {limit:.0f} s"
        await asyncio.sleep(0.2)


def _texts(entries: Any) -> list[tuple[int, bytes]]:
    """(sequence number, reply id) of each final message; an apology (a dead-lettered
    message: not a number) counts as -1, so that message shows up as lost."""
    return [(int(text) if text.isdigit() else -1, fields.get(b"id", b""))
            for _, fields in entries if fields.get(b"type") == b"message"
            for text in [fields.get(b"text", b"")]]


async def reconcile(redis: Redis, outboxes: dict[str, str], per_conversation: list[int],
                    outcome: Outcome) -> Outcome:
    """Count lost, duplicated and reordered replies (``outboxes``: conversation → key).

    With ``outcome.parts`` > 1, each answer is that many numbered replies (its parts,
    ``parts * seq + k``); ``dup_max_answer`` is the most duplicated parts of one answer.
    """
    for (conv, key), count in zip(outboxes.items(), per_conversation, strict=True):
        seqs = _texts(await redis.xrange(key) or [])
        outcome.replies += len(seqs)
        seen: dict[int, bytes] = {}
        highest = -1
        for seq, reply_id in seqs:
            if seq < 0:  # an apology: its message stays missing, i.e. lost
                continue
            if seq in seen:
                outcome.duplicated += 1
                outcome.dup_same_id += bool(reply_id) and seen[seq] == reply_id
                answer = (conv, seq // outcome.parts)
                outcome.dup_by_answer[answer] += 1
                outcome.dup_max_answer = max(outcome.dup_max_answer,
                                             outcome.dup_by_answer[answer])
                continue
            seen[seq] = reply_id
            if seq < highest:
                outcome.reordered += 1
            highest = max(highest, seq)
        missing = [s for s in range(count) if s not in seen]
        outcome.lost += len(missing)
        outcome.lost_examples += [f"{conv}#{s}" for s in missing[:3]]
    return outcome


@dataclass
class Pipeline:
    """A botcore web process and two workers of one chaos run, on ``services``' Redis."""

    services: Services
    port: int
    redis: Redis
    workers: list[subprocess.Popen[bytes]]
    start_worker: Callable[[], subprocess.Popen[bytes]]
    log_name: str

    async def ready(self, worker: subprocess.Popen[bytes]) -> bool:
        """Whether ``worker`` has started (its heartbeat is in Redis): the killer's test."""
        key = KeyBuilder(prefix="botcore").worker_heartbeat(f"{socket.gethostname()}-"
                                                             f"{worker.pid}")
        return bool(await self.redis.exists(key))

    def log(self) -> str:
        """What the workers logged."""
        return (self.services.workdir / self.log_name).read_text(errors="replace")

    async def close(self) -> None:
        """Empty Redis and stop the workers (the web process stops with ``services``)."""
        await self.redis.flushall()
        await self.redis.aclose()
        for worker in self.workers:
            self.services.stop(worker)


async def start_pipeline(services: Services, name: str, settings: dict[str, Any]) -> Pipeline:
    """Write ``settings``, start the web process and two ``botcore worker -c 2``, and wait
    until one of them is ready."""
    config = write_settings(services.workdir / f"botcore-{name}.toml", settings)
    env = {"BENCH_CONFIG": str(config), "BENCH_REDIS_URL": services.redis_url}
    port = services.start_uvicorn("bench.servers:botcore_app", env, f"web-{name}.log")
    log_name = f"worker-{name}.log"

    def start_worker() -> subprocess.Popen[bytes]:
        return services.start_worker(config, 2, log_name)

    pipeline = Pipeline(services, port, Redis.from_url(services.redis_url),
                        [start_worker() for _ in range(2)], start_worker, log_name)

    async def any_ready() -> bool:
        return any([await pipeline.ready(w) for w in pipeline.workers])

    await wait_until(any_ready, 60)
    return pipeline


def start_fake_api(services: Services, target: str, name: str) -> str:
    """Start a fake platform API (``module:factory`` in a uvicorn process); its base URL."""
    port = services.start_uvicorn(target, {"BENCH_REDIS_URL": services.redis_url},
                                  f"fake-{name}.log")
    return f"http://127.0.0.1:{port}"


def chaos_settings(services: Services, bot_id: str, bot: dict[str, Any]) -> dict[str, Any]:
    """botcore settings of a chaos run: short leases so a killed turn is re-run quickly."""
    return {
        "redis_url": services.redis_url,
        "ingress": {"lease_ttl": LEASE_TTL, "schedule_ttl": 10.0,
                    "sweep_interval": SWEEP_INTERVAL},
        "worker": {"task_time_limit": 30},
        "bots": {bot_id: bot},
    }
