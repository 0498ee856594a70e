"""The Celery app: one drain task, reliability settings, and the sweeper inside each worker.

Celery with the Redis broker can lose or reorder a task when a worker dies
(reliability.md 1.4), so a task here only says "drain conversation X"; the messages
themselves wait in the Redis inbox, and the sweeper re-drives any inbox left without a
live lease or a queued drain.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from celery import Celery, bootsteps, signals
from redis.asyncio import Redis

from botcore.ingress.drain import Drainer
from botcore.ingress.inbox import Inbox
from botcore.keys import KeyBuilder
from botcore.queue import DRAIN_TASK
from botcore.queue.kb_task import register_kb_task
from botcore.redis_client import connect
from botcore.settings import Settings

__all__ = ["HEARTBEAT_TTL", "WorkerState", "celery_settings", "forget_worker", "live_workers",
           "make_celery", "record_heartbeat"]

log = structlog.get_logger("botcore.worker")

#: Seconds a worker's heartbeat counts as live (the sweeper beats every sweep_interval).
HEARTBEAT_TTL = 10.0

# Both scripts read the time from Redis, so clock skew between pods does not matter.
_BEAT = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
return 1
"""
_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZCOUNT', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""


async def record_heartbeat(redis: Redis, keys: KeyBuilder, worker_id: str) -> None:
    """Mark ``worker_id`` live now, and forget workers silent for over HEARTBEAT_TTL."""
    await redis.eval(_BEAT, 1, keys.workers(), worker_id, str(HEARTBEAT_TTL))
    # The per-worker key stays for tools that wait for one given worker.
    await redis.set(keys.worker_heartbeat(worker_id), b"1", ex=int(HEARTBEAT_TTL))


async def forget_worker(redis: Redis, keys: KeyBuilder, worker_id: str) -> None:
    """Remove a stopping worker's heartbeat at once (not after HEARTBEAT_TTL)."""
    await redis.zrem(keys.workers(), worker_id)
    await redis.delete(keys.worker_heartbeat(worker_id))


async def live_workers(redis: Redis, keys: KeyBuilder) -> int:
    """How many workers beat within the last HEARTBEAT_TTL seconds (one round trip)."""
    count = await redis.eval(_COUNT, 1, keys.workers(), str(HEARTBEAT_TTL))
    return int(count)


def celery_settings(settings: Settings, redis_url: str) -> dict[str, Any]:
    """The settings reliability.md 1.3 recommends, derived from ours."""
    limit = settings.worker.task_time_limit
    return {
        "broker_url": redis_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_acks_on_failure_or_timeout": True,
        "task_time_limit": limit,
        "task_soft_time_limit": max(1, limit - 15),
        "broker_transport_options": {
            "visibility_timeout": limit + 60,
            "unacked_restore_interval": 5,
            "unacked_restore_throttle": 1,
            "global_keyprefix": f"{settings.key_prefix}:celery:",
            "health_check_interval": 10,
            "socket_keepalive": True,
        },
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "task_default_queue": settings.worker.queue,
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # A cold shutdown (a second SIGTERM, SIGQUIT) still gives tasks this long.
        "worker_soft_shutdown_timeout": settings.worker.shutdown_grace,
    }


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (it comes with ``uvicorn[standard]``), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class DrainPool:
    """Runs many drains at once on one event loop thread of a pool process.

    A drain spends most of its time waiting for the model, so one process drains up to
    ``limit`` conversations concurrently. The Celery task only hands the conversation over
    and returns once a slot is free (backpressure): the inbox, the lease and the sweeper
    keep the messages safe, not the Celery task, so finishing the task early loses nothing.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.loop = _new_loop()
        self.drainer: Drainer | None = None
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="botcore-drains",
                                        daemon=True)
        self._thread.start()

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        """Run ``coro`` on the pool's loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, conversation_id: str) -> None:
        """Start draining ``conversation_id``; blocks while all slots are busy."""
        self.call(self._start(conversation_id))

    async def _start(self, conversation_id: str) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        await self._slots.acquire()
        task = self.loop.create_task(self._run(conversation_id, self._slots))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, conversation_id: str, slots: asyncio.Semaphore) -> None:
        assert self.drainer is not None
        try:
            await self.drainer.drain(conversation_id)
        except Exception as exc:  # the lease expires and the sweeper re-drives
            log.error("drain failed", conversation=conversation_id, error=type(exc).__name__)
        finally:
            slots.release()

    def wait_idle(self, timeout: float) -> None:
        """Let running drains finish (at most ``timeout`` seconds), e.g. before exiting."""
        async def idle() -> None:
            if self._running:
                await asyncio.wait(set(self._running), timeout=timeout)
        self.call(idle(), timeout + 1)


@dataclass
class WorkerState:
    """What one worker process builds once (after the fork) and keeps."""

    pool: DrainPool
    close: Any


class _ProcessState:
    """Builds :class:`WorkerState` lazily in each pool process (never in the parent)."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self._pid = 0
        self._state: WorkerState | None = None

    def wait_idle(self, timeout: float) -> None:
        """Give this process's running drains ``timeout`` seconds to finish."""
        if self._state is not None and self._pid == os.getpid():
            self._state.pool.wait_idle(timeout)

    def get(self) -> WorkerState:
        if self._state is None or self._pid != os.getpid():
            from botcore.worker import build_worker_state

            self._state = build_worker_state(self.settings, self.redis_url)
            self._pid = os.getpid()
        return self._state


def make_celery(settings: Settings, redis_url: str) -> Celery:
    """A Celery app bound to these settings, with the drain task and the sweeper step."""
    app = Celery("botcore", set_as_current=False)
    app.conf.update(celery_settings(settings, redis_url))
    holder = _ProcessState(settings, redis_url)

    @app.task(name=DRAIN_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def drain(conversation_id: str) -> None:
        holder.get().pool.submit(conversation_id)

    def finish_drains(**_: Any) -> None:  # in each pool process, just before it exits
        holder.wait_idle(settings.worker.shutdown_grace)

    signals.worker_process_shutdown.connect(finish_drains, weak=False,
                                            dispatch_uid=f"botcore-drains-{id(holder)}")

    app.steps["worker"].add(_sweeper_step(settings, redis_url))
    register_kb_task(app, settings, redis_url)  # `botcore kb ...` while this worker holds Qdrant
    return app


def _sweeper_step(settings: Settings, redis_url: str) -> type[bootsteps.StartStopStep]:
    class SweeperStep(bootsteps.StartStopStep):  # type: ignore[misc]
        """Runs :class:`Sweeper` in a thread of the worker's main process."""

        requires: ClassVar[set[str]] = {"celery.worker.components:Pool"}

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            self.sweeper = Sweeper(settings, redis_url, worker.app)

        def start(self, worker: Any) -> None:
            self.sweeper.start()

        def stop(self, worker: Any) -> None:
            self.sweeper.stop()

    return SweeperStep


class Sweeper:
    """Re-drives inboxes with messages but no live lease and no queued drain.

    Every ``sweep_interval`` seconds it scans the ``dirty`` set; it also writes this
    worker's heartbeat (:func:`record_heartbeat`), which ``/healthz``, ``/readyz?workers=1``
    and the ``botcore_workers_live`` gauge count.
    """

    def __init__(self, settings: Settings, redis_url: str, celery: Celery) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.celery = celery
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the sweeper thread."""
        self._thread = threading.Thread(target=self._run, name="botcore-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within one interval)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        redis = connect(self.redis_url)
        keys = KeyBuilder(prefix=self.settings.key_prefix)
        inbox = Inbox(redis, keys, schedule_ttl=self.settings.ingress.schedule_ttl)
        try:
            while not self._stop.is_set():
                try:
                    await record_heartbeat(redis, keys, self.worker_id)
                    await self.sweep_once(inbox)
                except Exception as exc:  # Redis restarting: keep trying
                    log.warning("sweep failed", error=type(exc).__name__)
                await asyncio.sleep(self.settings.ingress.sweep_interval)
            await forget_worker(redis, keys, self.worker_id)
        except Exception as exc:
            log.warning("could not remove the worker heartbeat", error=type(exc).__name__)
        finally:
            await redis.aclose()

    async def sweep_once(self, inbox: Inbox) -> int:
        """One pass; returns how many drains were scheduled."""
        scheduled = 0
        for conv in await inbox.dirty():
            if await inbox.needs_drain(conv):
                self.celery.send_task(DRAIN_TASK, args=[conv],
                                      queue=self.settings.worker.queue)
                scheduled += 1
        if scheduled:
            log.info("sweeper re-drove conversations", count=scheduled)
        return scheduled
