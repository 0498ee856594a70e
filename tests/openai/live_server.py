"""A real HTTP server for the API and widget tests: botcore's app under uvicorn in a thread,
with a real worker process, on a flushed real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis as redis_sync
from fastapi import FastAPI

from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack
from botcore.web.app import create_app


def botcore_app(stack: BotStack, *, timeout: float = 30.0) -> FastAPI:
    """The app as ``botcore serve`` builds it, with the answer timeout set."""
    settings = stack.settings.model_copy(update={"answer_timeout": timeout})
    return create_app(settings, redis_url=stack.redis_url)


serve = serve_in_thread


@contextmanager
def running_stack(redis_url: str, workdir: Path, config: dict[str, Any],
                  *, timeout: float = 30.0) -> Iterator[tuple[BotStack, str]]:
    """A flushed Redis, one worker process, and botcore's app served over HTTP."""
    client = redis_sync.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    stack = BotStack(redis_url, workdir, config)
    stack.start_worker(concurrency=2)
    try:
        with serve(botcore_app(stack, timeout=timeout)) as base_url:
            yield stack, base_url
    finally:
        asyncio.run(stack.close())
