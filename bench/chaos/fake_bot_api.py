"""A fake Telegram Bot API for the chaos benchmark, recording into Redis.

Shaped as https://core.telegram.org/bots/api: ``POST /bot<token>/<method>`` with a JSON body,
answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": ..., "description":
...}``. It implements what a bot answering in private chats calls: ``getMe``,
``sendMessage``, ``editMessageText``, ``sendChatAction``, ``setWebhook``/``deleteWebhook``.

Every call takes a random 20-80 ms (``BENCH_TG_LATENCY`` = ``"min,max"`` seconds): half
before the message is recorded (handling), half after (the answer travelling back). A
request the client finished writing is processed even if the client dies meanwhile, as a
real server would: a worker SIGKILLed inside the call has its message delivered but never
learns its id.

Recorded in the bench's Redis (``BENCH_REDIS_URL``), so the reconciler reads it like the web
channel's reply streams:

* :func:`chat_stream` ``(chat_id)``: one ``XADD`` per message the bot sent in that chat, in
  the order Telegram accepted them: ``type=message``, ``text`` = the first word of the
  plain text (the bench bots put the sequence number there), ``id`` = the message id;
* :data:`CALLS`: ``"<method> <start> <end>"`` per call (wall-clock seconds), to count the
  calls in flight when a worker was killed.

Run as ``uvicorn --factory bench.chaos.fake_bot_api:create_app``; reads the environment when
uvicorn calls the factory, never at import.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from botcore.redis_client import connect

__all__ = ["BOT_USERNAME", "CALLS", "TOKEN", "chat_stream", "create_app"]

TOKEN = "424242:AAbench-chaos_fake-token"
BOT_USERNAME = "chaos_bench_bot"
CALLS = "bench:tg:calls"
_BOT = {"id": 424242, "is_bot": True, "first_name": "Chaos", "username": BOT_USERNAME}


def chat_stream(chat_id: int) -> str:
    """The Redis stream of the messages the bot sent in ``chat_id``."""
    return f"bench:tg:chat:{chat_id}"


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


class _Fake:
    def __init__(self, redis: Redis, latency: tuple[float, float]) -> None:
        self.redis = redis
        self.latency = latency

    async def endpoint(self, request: Request) -> JSONResponse:
        started = time.time()
        method = request.path_params["method"]
        # Read the request at once: a client killed after writing it does not take it back
        # (uvicorn would report a disconnect instead of a body read later).
        body = await request.body()
        delay = random.uniform(*self.latency)
        await asyncio.sleep(delay / 2)
        try:
            if request.path_params["token"] != TOKEN:
                raise _ApiError(401, "Unauthorized")
            params: dict[str, Any] = json.loads(body) if body else {}
            result = await self.handle(method, params)
        except _ApiError as exc:
            return JSONResponse({"ok": False, "error_code": exc.code,
                                 "description": exc.description}, status_code=exc.code)
        finally:
            await asyncio.sleep(delay / 2)
            await self.redis.rpush(CALLS, f"{method} {started:.4f} {time.time():.4f}")
        return JSONResponse({"ok": True, "result": result})

    async def handle(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return _BOT
        if method in ("setWebhook", "deleteWebhook", "sendChatAction"):
            return True
        chat_id = int(params.get("chat_id") or 0)
        text = str(params.get("text") or "")
        if not chat_id:
            raise _ApiError(400, "Bad Request: chat not found")
        if not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        if method == "sendMessage":
            message_id = int(await self.redis.incr(f"bench:tg:next:{chat_id}"))
            await self.redis.xadd(chat_stream(chat_id), {
                "type": "message", "text": text.split(maxsplit=1)[0], "id": str(message_id)})
            return self.message(chat_id, message_id, text)
        if method == "editMessageText":
            return self.message(chat_id, int(params["message_id"]), text)
        raise _ApiError(404, "Not Found")

    @staticmethod
    def message(chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        return {"message_id": message_id, "date": int(time.time()), "from": _BOT,
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                "text": text}


def create_app() -> Starlette:
    """The fake, recording into ``BENCH_REDIS_URL``."""
    low, high = (float(v) for v in os.environ.get("BENCH_TG_LATENCY", "0.02,0.08").split(","))
    state: dict[str, _Fake] = {}

    async def endpoint(request: Request) -> JSONResponse:
        return await state["fake"].endpoint(request)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = connect(os.environ["BENCH_REDIS_URL"])
        state["fake"] = _Fake(redis, (low, high))
        try:
            yield
        finally:
            await redis.aclose()

    return Starlette(routes=[Route("/bot{token}/{method}", endpoint, methods=["GET", "POST"])],
                     lifespan=lifespan)
