"""Scheduling drains: the Enqueuer contract, Celery in production, inline for unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from celery import Celery

__all__ = ["DRAIN_TASK", "CeleryEnqueuer", "Enqueuer", "InlineEnqueuer"]

DRAIN_TASK = "botcore.drain"


@runtime_checkable
class Enqueuer(Protocol):
    """Schedules a drain of one conversation's inbox. Only the id crosses the queue."""

    async def schedule(self, conversation_id: str) -> None:
        """Queue ``drain(conversation_id)``."""


class CeleryEnqueuer:
    """Publishes drain tasks to Celery (Redis broker)."""

    def __init__(self, celery: Celery, queue: str) -> None:
        self._celery = celery
        self._queue = queue

    async def schedule(self, conversation_id: str) -> None:
        """Publish the task (a ~0.3 ms LPUSH on the broker; not worth a thread hop)."""
        self._celery.send_task(DRAIN_TASK, args=[conversation_id], queue=self._queue)


class InlineEnqueuer:
    """Runs drains as tasks on the current event loop: for unit tests and experiments."""

    def __init__(self, drain: Callable[[str], Awaitable[object]]) -> None:
        self._drain = drain
        self.tasks: list[asyncio.Task[object]] = []

    async def schedule(self, conversation_id: str) -> None:
        """Start the drain now, in the background."""
        self.tasks.append(asyncio.ensure_future(self._drain(conversation_id)))

    async def wait(self) -> None:
        """Wait for every drain started so far (and those they started)."""
        while self.tasks:
            pending, self.tasks = self.tasks, []
            await asyncio.gather(*pending)
