"""The CLI's side of a KB job: hand it to the running worker that holds the local folder.

:func:`hand_over` finds the deployment's Redis (``redis_url``, or the URL a running embedded
``botcore serve`` writes under ``data_dir``), checks that a worker is live, sends the
:data:`~botcore.queue.kb_task.KB_JOB_TASK` task and follows the job's state in Redis until it
is done. With no running worker it raises the usual "in use by another process" error,
saying what to do.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botcore.kb.errors import StoreError, StoreLockedError
from botcore.kb.jobs import JOB_TTL, JobState, KBJob, job_key
from botcore.keys import KeyBuilder

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from botcore.settings import Settings

__all__ = ["hand_over", "new_job_id"]

#: Seconds a sent job may stay unclaimed before the CLI gives up on the worker.
PICKUP_TIMEOUT = 60.0
_POLL = 0.2
_LIVENESS_EVERY = 5.0


def new_job_id() -> str:
    """A random job id."""
    return secrets.token_hex(8)


def _redis_url(settings: Settings) -> str | None:
    from botcore.embedded import embedded_url_file

    if settings.redis_url:
        return str(settings.redis_url)
    found = embedded_url_file(settings)
    return found.read_text(encoding="utf-8").strip() if found.is_file() else None


def _no_worker(locked: StoreLockedError, why: str) -> StoreLockedError:
    return StoreLockedError(locked.path, (
        f"Qdrant local storage {locked.path} is in use by another process, and {why}. Stop "
        "that process and run the command again; or start `botcore serve` (or `botcore "
        "worker`) with the same botcore.toml so the command hands the job to it; or run a "
        "Qdrant server and set kb.qdrant_url"))


async def hand_over(settings: Settings, job: KBJob, locked: StoreLockedError,
                    show: Callable[[JobState], None]) -> JobState:
    """Run ``job`` in the live worker; ``show`` gets each state. Returns the final state.

    Raises:
        StoreLockedError: no Redis or no live worker to hand the job to.
        StoreError: the worker did not take the job, or stopped while running it.
    """
    from redis.exceptions import RedisError

    from botcore.queue.celery_app import live_workers
    from botcore.redis_client import connect

    url = _redis_url(settings)
    if not url:
        raise _no_worker(locked, "no Redis is configured (redis_url) or running for this "
                                 "data_dir")
    keys = KeyBuilder(prefix=settings.key_prefix)
    redis = connect(url)
    try:
        try:
            if await live_workers(redis, keys) == 0:
                raise _no_worker(locked, "no botcore worker is running")
            await redis.set(job_key(keys, job.id), JobState().model_dump_json(), ex=JOB_TTL)
        except RedisError as exc:
            raise _no_worker(locked, f"Redis at its URL does not answer "
                                     f"({type(exc).__name__})") from None
        await asyncio.to_thread(_send, settings, url, job)
        return await _follow(redis, keys, job, show)
    finally:
        await redis.aclose()


def _send(settings: Settings, url: str, job: KBJob) -> None:
    from celery import Celery

    from botcore.queue.celery_app import celery_settings
    from botcore.queue.kb_task import KB_JOB_TASK

    app = Celery("botcore", set_as_current=False)
    app.conf.update(celery_settings(settings, url))
    try:
        app.send_task(KB_JOB_TASK, args=[job.model_dump(mode="json")],
                      queue=settings.worker.queue)
    finally:
        app.close()


async def _follow(redis: Redis, keys: KeyBuilder, job: KBJob,
                  show: Callable[[JobState], None]) -> JobState:
    from botcore.queue.celery_app import live_workers

    sent = last_check = time.monotonic()
    while True:
        raw = await redis.get(job_key(keys, job.id))
        state = JobState.model_validate_json(raw) if raw else JobState(
            state="failed", error="the job's state vanished from Redis")
        show(state)
        if state.finished:
            return state
        now = time.monotonic()
        if state.state == "queued" and now - sent > PICKUP_TIMEOUT:
            raise StoreError(f"the worker did not take the job within {PICKUP_TIMEOUT:.0f} s "
                             "(it may still run it later: check `botcore kb list`)")
        if now - last_check > _LIVENESS_EVERY:
            last_check = now
            if await live_workers(redis, keys) == 0:
                raise StoreError("the worker stopped before the job finished; run the "
                                 "command again (ingestion is incremental)")
        await asyncio.sleep(_POLL)
