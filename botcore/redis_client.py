"""One way to open a Redis client, with timeouts chosen for how botcore uses Redis.

redis-py 8 reads replies with a 5 s socket timeout by default. Botcore holds blocking reads
(``XREAD BLOCK`` for the web chat's Server-Sent Events and the OpenAI API's streams) for up
to :data:`MAX_BLOCK_MS`, so a client built with the library's defaults raises
``TimeoutError: Timeout reading from ...`` in the middle of a healthy, idle stream. Every
client botcore opens comes from here instead:

- the read timeout is :data:`SOCKET_TIMEOUT_S`, longer than any block botcore asks for, so
  only a server that stopped answering times out;
- TCP keep-alive and a health check on idle connections notice a peer that went away
  (a restarted Redis, a dropped NAT entry) before a command is sent down a dead socket.

Callers that block use :func:`clamp_block_ms` so a configured wait can never outlast the
read timeout.
"""

from __future__ import annotations

from typing import Any

import redis as redis_sync
from redis.asyncio import Redis

__all__ = ["MAX_BLOCK_MS", "SOCKET_TIMEOUT_S", "clamp_block_ms", "connect", "connect_sync"]

#: Seconds a command may wait for its reply before the client gives up on the connection.
SOCKET_TIMEOUT_S = 30.0
#: The longest ``BLOCK`` botcore sends: well inside :data:`SOCKET_TIMEOUT_S`.
MAX_BLOCK_MS = 20_000
_DEFAULTS: dict[str, Any] = {
    "socket_timeout": SOCKET_TIMEOUT_S,
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
    "health_check_interval": 15,
}


def clamp_block_ms(block_ms: int) -> int:
    """A ``BLOCK`` argument between 1 ms and :data:`MAX_BLOCK_MS`."""
    return max(1, min(int(block_ms), MAX_BLOCK_MS))


def connect(url: str, **overrides: Any) -> Redis:
    """An asyncio client for ``url`` (connects lazily); keyword arguments override the
    defaults above (``decode_responses=True``, a shorter ``socket_connect_timeout``, ...)."""
    return Redis.from_url(url, **{**_DEFAULTS, **overrides})


def connect_sync(url: str, **overrides: Any) -> redis_sync.Redis:
    """The blocking client, same defaults (for CLIs, Celery-side helpers and tests)."""
    return redis_sync.Redis.from_url(url, **{**_DEFAULTS, **overrides})
