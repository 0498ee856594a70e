"""uvicorn factories (``uvicorn --factory bench.servers:botcore_app``) for the benchmarks.

Both read their settings from the environment when uvicorn calls them, never at import:
``BENCH_CONFIG`` (a botcore.toml) and ``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from redis.asyncio import Redis

__all__ = ["bare_app", "botcore_app"]

_ACK = b'{"ok":true}'


def botcore_app() -> FastAPI:
    """botcore's own web app, as ``botcore serve`` builds it (logging configured first)."""
    from botcore.logging import configure_logging
    from botcore.settings import load_settings
    from botcore.web.app import create_app

    settings = load_settings(os.environ["BENCH_CONFIG"])
    configure_logging(settings.log_level, settings.log_json)
    return create_app(settings, redis_url=os.environ["BENCH_REDIS_URL"], listen=False)


def bare_app() -> FastAPI:
    """The baseline: a bare FastAPI endpoint doing the same Redis writes, naively.

    ``SET dedupe NX EX`` then, if new, ``RPUSH inbox`` and ``SADD dirty``: three round
    trips, no script, no verification beyond parsing the JSON body.
    """
    state: dict[str, Redis] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["redis"] = Redis.from_url(os.environ["BENCH_REDIS_URL"])
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await state["redis"].aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/webhooks/{channel}/{bot_id}")
    async def webhook(channel: str, bot_id: str, request: Request) -> Response:
        data = json.loads(await request.body())
        redis = state["redis"]
        conv = f"{channel}:{bot_id}:{data['conversation_id']}"
        if await redis.set(f"bare:dedupe:{data['client_msg_id']}", b"1", nx=True, ex=86_400):
            await redis.rpush(f"bare:inbox:{conv}", json.dumps(data))
            await redis.sadd("bare:dirty", conv)
        return Response(_ACK, media_type="application/json")

    return app
