"""The KB job task: the worker that holds Qdrant's local folder ingests for the CLI.

``botcore kb ingest`` / ``delete`` / ``search`` send :data:`KB_JOB_TASK` with a JSON
:class:`~botcore.kb.jobs.KBJob` when the local folder is locked by a running botcore. The task
returns at once and the job runs in a thread of the same pool process, one job at a time, so
a long ingest neither holds the pool slot drains need nor meets the task time limit. The
job's progress and report go to Redis (:func:`~botcore.kb.jobs.job_key`), where the CLI
waits for them. botcore.kb is imported only when a job arrives.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import structlog
from celery import Celery

from botcore.keys import KeyBuilder
from botcore.settings import Settings

__all__ = ["KB_JOB_TASK", "register_kb_task"]

KB_JOB_TASK = "botcore.kb_job"

log = structlog.get_logger("botcore.worker")


def register_kb_task(app: Celery, settings: Settings, redis_url: str) -> None:
    """Register :data:`KB_JOB_TASK` on ``app`` (called by ``make_celery``)."""
    runner = _JobRunner(settings, redis_url)

    @app.task(name=KB_JOB_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
    def kb_job(payload: dict[str, Any]) -> None:
        runner.start(payload)


class _JobRunner:
    """Runs KB jobs one at a time, each in its own thread of the current pool process."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.settings = settings
        self.redis_url = redis_url
        self.keys = KeyBuilder(prefix=settings.key_prefix)
        self._one_at_a_time = threading.Lock()

    def start(self, payload: dict[str, Any]) -> None:
        """Validate the job and start its thread (returns at once)."""
        from botcore.kb.jobs import KBJob

        try:
            job = KBJob.model_validate(payload)
        except ValueError as exc:
            log.warning("kb job rejected", error=str(exc)[:200])
            return
        threading.Thread(target=self._run, args=(job,), name=f"botcore-kb-{job.id}",
                         daemon=True).start()

    def _run(self, job: Any) -> None:
        from botcore.kb.jobs import JOB_TTL, JobState, execute, job_key
        from botcore.kb.resources import default_resources
        from botcore.redis_client import connect_sync

        redis = connect_sync(self.redis_url)
        key = job_key(self.keys, job.id)

        def publish(state: JobState) -> None:
            redis.set(key, state.model_dump_json(), ex=JOB_TTL)

        try:
            if not self._one_at_a_time.acquire(blocking=False):
                publish(JobState(state="waiting"))
                self._one_at_a_time.acquire()
            try:
                kb = self.settings.kb.resolve(self.settings.data_dir)
                log.info("kb job started", job=job.id, op=job.op, kb=job.kb)
                state = asyncio.run(execute(job, kb, default_resources(), publish))
                log.info("kb job finished", job=job.id, state=state.state)
            finally:
                self._one_at_a_time.release()
        except Exception as exc:  # Redis gone: the CLI sees the worker stop answering
            log.error("kb job failed", job=job.id, error=type(exc).__name__)
        finally:
            redis.close()
