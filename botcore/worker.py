"""The worker process: build its state once, run the Celery worker.

``botcore worker`` calls :func:`run_worker`. It first checks the configuration
(:func:`check_config`) in the main process, so a bad bot app or a missing credential stops
the worker before it consumes anything or writes a heartbeat. Every pool process then builds
its own :class:`~botcore.queue.celery_app.WorkerState` (event loop, Redis and HTTP clients,
adapters, apps) on its first task, after the fork.
"""

from __future__ import annotations

import asyncio

from botcore.flowrun import GraphFlowRunner
from botcore.ingress.drain import Drainer
from botcore.ingress.inbox import Inbox
from botcore.logging import configure_logging
from botcore.queue.celery_app import DrainPool, WorkerState, make_celery
from botcore.runtime import Runtime
from botcore.sessions.redis import RedisSessionStore
from botcore.settings import Settings
from botcore.turns import TurnRunner

__all__ = ["build_worker_state", "check_config", "run_worker"]


def build_worker_state(settings: Settings, redis_url: str) -> WorkerState:
    """Everything a pool process needs, on the event loop thread of its drain pool."""
    pool = DrainPool(settings.worker.drains_per_process)
    runtime = Runtime.build(settings, redis_url=redis_url)
    pool.call(runtime.startup())
    store = RedisSessionStore.from_settings(runtime.redis, runtime.keys, settings.sessions)
    flows = GraphFlowRunner(runtime)
    turns = TurnRunner(runtime, store, flows)
    inbox = Inbox(runtime.redis, runtime.keys, dedupe_ttl=settings.ingress.dedupe_ttl,
                  schedule_ttl=settings.ingress.schedule_ttl)
    pool.drainer = Drainer(inbox, settings.ingress, turns.run, turns.apologize,
                           turn_timeout=settings.worker.task_time_limit)
    return WorkerState(pool=pool, close=runtime.close)


def check_config(settings: Settings, redis_url: str) -> None:
    """Build the Runtime once, without starting it, then drop it.

    That imports every bot app and validates every adapter's options, as the pool
    processes will after the fork. No network I/O: Redis connects lazily, and adapters are
    not started (a start may register webhooks).

    Raises:
        ConfigError: naming the bad key (values are never echoed).
    """
    runtime = Runtime.build(settings, redis_url=redis_url)

    async def close() -> None:
        await runtime.http.aclose()
        await runtime.redis.aclose()

    asyncio.run(close())


def run_worker(settings: Settings, redis_url: str, *, concurrency: int | None = None,
               pool: str = "prefork", loglevel: str = "INFO") -> None:
    """Run a Celery worker for these settings until it is stopped (blocks).

    Raises:
        ConfigError: before the worker starts consuming, if a bot's settings are wrong.
    """
    configure_logging(settings.log_level, settings.log_json)
    check_config(settings, redis_url)
    celery = make_celery(settings, redis_url)
    argv = [
        "worker", "-Q", settings.worker.queue,
        "-c", str(concurrency or settings.worker.concurrency), "-P", pool,
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-l", loglevel,
    ]
    celery.worker_main(argv)
