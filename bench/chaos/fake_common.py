"""What the chaos bench's fake platforms (Feishu, WeCom) share: latency, the call log, and
recording each message the platform created into a Redis stream per chat.

Every call takes a random 20-80 ms (``BENCH_FAKE_LATENCY`` = ``"min,max"`` seconds): half
before the message is created (handling), half after (the answer travelling back). The
request is read at once, so a client SIGKILLed after writing it does not take it back: its
message is created, as a real server would, and the worker never learns its id.

Recorded in the bench's Redis (``BENCH_REDIS_URL``), read by :func:`bench.chaos.run.reconcile`:
one ``XADD`` per created message to the chat's stream (``type=message``, ``text`` = the first
word of the text, ``id`` = the platform's message id), and ``"<call> <start> <end>"`` per call
to the fake's call list (wall clock), to count the calls in flight at each kill.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from botcore.redis_client import connect

__all__ = ["Handler", "Recorder", "calls_key", "chat_stream", "create_fake", "deduped_key",
           "json_response"]

# KEYS: chat stream, id counter, uuid key ("" slot when unused), dedupe counter.
# ARGV: text, id prefix, uuid TTL in ms (0: no uuid). Returns {created (1/0), message id}.
_CREATE = """
if tonumber(ARGV[3]) > 0 then
  local existing = redis.call('GET', KEYS[3])
  if existing then
    redis.call('INCR', KEYS[4])
    return {0, existing}
  end
end
local id = ARGV[2] .. redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], '*', 'type', 'message', 'text', ARGV[1], 'id', id)
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[3], id, 'PX', ARGV[3])
end
return {1, id}
"""


def chat_stream(prefix: str, chat: str) -> str:
    """The stream of the messages the fake under ``prefix`` created in ``chat``."""
    return f"{prefix}:chat:{chat}"


def calls_key(prefix: str) -> str:
    """The call log list of the fake under ``prefix``."""
    return f"{prefix}:calls"


def deduped_key(prefix: str) -> str:
    """Counter of calls answered with an earlier message (same idempotency key)."""
    return f"{prefix}:deduped"


class Recorder:
    """Creates and records messages in the bench's Redis, under ``prefix``.

    Args:
        redis: the bench's Redis.
        prefix: key prefix of this fake (``bench:fs``, ``bench:wc``).
    """

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self._create = redis.register_script(_CREATE)

    async def create(self, chat: str, text: str, id_prefix: str, *, uuid: str = "",
                     uuid_ttl: float = 0.0) -> tuple[bool, str]:
        """Create a message in ``chat`` (atomically); with ``uuid``, the same uuid within
        ``uuid_ttl`` seconds answers the first message and creates nothing.

        Returns:
            (created, message id).
        """
        ttl_ms = int(uuid_ttl * 1000) if uuid else 0
        uuid_key = f"{self.prefix}:uuid:{uuid}" if uuid else f"{self.prefix}:uuid:-"
        created, message_id = await self._create(
            keys=[chat_stream(self.prefix, chat), f"{self.prefix}:next", uuid_key,
                  deduped_key(self.prefix)],
            args=[(text.split(maxsplit=1) or [""])[0], id_prefix, ttl_ms])
        value = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
        return bool(int(created)), value


#: One endpoint: (recorder, request, raw body) -> (call name for the log, response).
Handler = Callable[[Recorder, Request, bytes], Awaitable[tuple[str, Response]]]


def create_fake(prefix: str, routes: list[tuple[str, str, Handler]],
                log_calls: frozenset[str]) -> Starlette:
    """A Starlette fake whose ``routes`` (path, method, handler) all take the latency;
    calls named in ``log_calls`` go to the call log. Reads the environment when uvicorn
    calls the factory that calls this, never at import."""
    low, high = (float(v) for v in
                 os.environ.get("BENCH_FAKE_LATENCY", "0.02,0.08").split(","))
    state: dict[str, Recorder] = {}

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            started = time.time()
            body = await request.body()  # at once: a dying client does not take it back
            delay = random.uniform(low, high)
            await asyncio.sleep(delay / 2)
            name, response = await handler(state["recorder"], request, body)
            await asyncio.sleep(delay / 2)
            if name in log_calls:
                await state["recorder"].redis.rpush(
                    calls_key(prefix), f"{name} {started:.4f} {time.time():.4f}")
            return response
        return endpoint

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = connect(os.environ["BENCH_REDIS_URL"])
        state["recorder"] = Recorder(redis, prefix)
        try:
            yield
        finally:
            await redis.aclose()

    return Starlette(routes=[Route(path, wrap(handler), methods=[method])
                             for path, method, handler in routes], lifespan=lifespan)


def json_response(payload: dict[str, Any], status: int = 200) -> JSONResponse:
    """A JSON answer."""
    return JSONResponse(payload, status_code=status)
