"""Scheduling drains: the Enqueuer contract, Celery in production, inline for unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from celery import Celery

__all__ = ["DRAIN_TASK", "CeleryEnqueuer", "Enqueuer", "InlineEnqueuer"]

DRAIN_TASK = "botcore.drain"


@runtime_checkable
class Enqueuer(Protocol):
    """Schedules a drain of one conversation's inbox. Only the id crosses the queue."""

    async def schedule(self, conversation_id: str) -> None:
        """Queue ``drain(conversation_id)``."""


class CeleryEnqueuer:
    """Publishes drain tasks to Celery (Redis broker).

    After :meth:`prepare`, :meth:`prebuilt` returns ready broker messages that the inbox's
    admit script pushes itself (see :mod:`botcore.queue.prebuilt`); :meth:`schedule` is the
    ``send_task`` path, used when no template could be taken.
    """

    def __init__(self, celery: Celery, queue: str) -> None:
        self._celery = celery
        self._queue = queue
        self._drain_message: Any = None

    def prepare(self) -> bool:
        """Take the drain message template from the broker (sync I/O: call at start-up)."""
        from botcore.queue.prebuilt import capture_drain_message

        self._drain_message = capture_drain_message(self._celery, self._queue)
        return self._drain_message is not None

    def prebuilt(self, conversation_id: str) -> tuple[str, str] | None:
        """``(broker list key, message)`` for the admit script, or None (use schedule)."""
        if self._drain_message is None:
            return None
        return self._drain_message.list_key, self._drain_message.build(conversation_id)

    async def schedule(self, conversation_id: str) -> None:
        """Publish the task through Celery."""
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
