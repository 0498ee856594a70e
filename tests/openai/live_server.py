"""A real HTTP server for the API and widget tests: botcore's app under uvicorn in a thread,
with a real worker process, on a flushed real Redis."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis as redis_sync
import uvicorn
from fastapi import FastAPI

from botcore.testing.stack import BotStack
from botcore.web.app import create_app
from botcore.web.openai_api import build_openai_router
from botcore.web.widget import build_widget_router


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def botcore_app(stack: BotStack, *, timeout: float = 30.0) -> FastAPI:
    """create_app plus the two routers of issue 10 (as the lead wires them)."""
    app = create_app(stack.settings, redis_url=stack.redis_url)
    app.include_router(build_openai_router(timeout=timeout))
    app.include_router(build_widget_router())
    return app


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Run ``app`` (any ASGI app) with uvicorn on a loopback port; yield its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="auto")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


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
