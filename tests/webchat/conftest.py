"""Web chat fixtures: settings with web bots, a Runtime, and an app served by uvicorn.

The served app holds the real chat router plus a stand-in for the lead's webhook route
(adapter.handle_webhook → Redis SET NX dedupe → an "echo" worker that streams its answer
through adapter.open_stream), so the page/terminal path is exercised end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from botcore.channel import Accepted, AdapterDeps, Rejected, WebhookRequest
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage, OutboundMessage
from botcore.redis_client import connect
from botcore.runtime import Runtime
from botcore.settings import Settings, load_settings
from botcore.web.chat import build_chat_router
from botcore.webchat import WebChatAdapter

ACCESS_KEY = "s3cret-key"
BOTS: dict[str, dict[str, Any]] = {
    "demo": {"channel": "web", "app": "examples.none:app", "name": "Demo"},
    "locked": {"channel": "web", "app": "examples.none:app", "access_key": ACCESS_KEY},
    "tg": {"channel": "telegram", "app": "examples.none:app", "token": "x"},
}


@pytest.fixture
def access_key() -> str:
    """The ``locked`` bot's access key."""
    return ACCESS_KEY


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with two web bots and one telegram bot (no botcore.toml in the way)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    return load_settings(bots=BOTS, key_prefix="test")


def make_runtime(settings: Settings, redis: Redis) -> Runtime:
    """A Runtime built directly (Runtime.build would import the bot apps)."""
    runtime = Runtime(settings=settings, keys=KeyBuilder(prefix=settings.key_prefix),
                      redis=redis, http=httpx.AsyncClient())
    deps = AdapterDeps(redis=redis, http=runtime.http, keys=runtime.keys)
    for bot_id, bot in settings.bots.items():
        if bot.channel == "web":
            runtime.adapters[bot_id] = WebChatAdapter(bot, deps)
    return runtime


async def _echo(adapter: WebChatAdapter, message: InboundMessage) -> None:
    """The fake worker: streams "echo: <text>" in three steps."""
    template = OutboundMessage(conversation=message.conversation, format="markdown",
                               idempotency_key=OutboundMessage.make_key(message.event_id, 0))
    stream = adapter.open_stream(template)
    assert stream is not None
    answer = f"echo: {message.text}"
    for cut in (3, 6):
        await stream.update(answer[:cut])
        await asyncio.sleep(0.06)
    await stream.finish(answer)


def make_app(runtime: Runtime, *, block_ms: int = 15_000) -> FastAPI:
    """The chat router plus a stand-in webhook route, owning ``runtime`` for its lifespan."""
    tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await runtime.redis.aclose()
        await runtime.http.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.runtime = runtime
    app.include_router(build_chat_router(block_ms=block_ms))

    @app.post("/webhooks/web/{bot_id}")
    async def webhook(bot_id: str, request: Request) -> Response:
        adapter = runtime.adapters[bot_id]
        assert isinstance(adapter, WebChatAdapter)
        outcome = await adapter.handle_webhook(WebhookRequest(
            method="POST", headers={k.lower(): v for k, v in request.headers.items()},
            query=dict(request.query_params), body=await request.body()))
        if isinstance(outcome, Rejected):
            return JSONResponse({"error": outcome.reason}, status_code=outcome.status)
        assert isinstance(outcome, Accepted)
        for message in outcome.messages:
            key = runtime.keys.dedupe(message.dedupe_key)
            if await runtime.redis.set(key, 1, nx=True, ex=60):
                task = asyncio.create_task(_echo(adapter, message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        return Response(outcome.ack_body, media_type=outcome.content_type)

    return app


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def server_url(settings: Settings, clean_redis: str) -> Iterator[str]:
    """The chat app served in a thread, with its own Redis client (used only there)."""
    runtime = make_runtime(settings, connect(clean_redis))
    with serve(make_app(runtime, block_ms=300)) as url:
        yield url


@pytest.fixture
def slow_block_server_url(settings: Settings, clean_redis: str) -> Iterator[str]:
    """The chat app with XREAD blocking 6 s: longer than redis-py's default 5 s read
    timeout, which botcore's client must not inherit."""
    runtime = make_runtime(settings, connect(clean_redis))
    with serve(make_app(runtime, block_ms=6_000)) as url:
        yield url


@pytest.fixture
async def writer(settings: Settings, redis: Redis) -> AsyncIterator[WebChatAdapter]:
    """The ``demo`` adapter on the test's own Redis client: what a worker would use."""
    async with httpx.AsyncClient() as http:
        deps = AdapterDeps(redis=redis, http=http, keys=KeyBuilder(prefix=settings.key_prefix))
        yield WebChatAdapter(settings.bots["demo"], deps)
