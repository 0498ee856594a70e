"""A :class:`~botcore.turns.TurnRunner` around one adapter and one app, for tests of turns
(what the worker runs per message) without a worker, a queue or a settings file."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from botcore.runtime import Runtime
from botcore.sessions.redis import RedisSessionStore
from botcore.settings import Settings
from botcore.turns import TurnRunner

if TYPE_CHECKING:
    from botcore.app import BotApp
    from botcore.channel import ChannelAdapter
    from botcore.context import FlowRunner

__all__ = ["turn_runner"]


def turn_runner(redis: Redis, adapter: ChannelAdapter, app: BotApp, *, bot_id: str = "t",
                key_prefix: str = "test", flows: FlowRunner | None = None) -> TurnRunner:
    """Bot ``bot_id`` answering with ``app`` through ``adapter``, sessions in ``redis``.

    Example:
        >>> runner = turn_runner(redis, RecordingAdapter(), app)   # doctest: +SKIP
        >>> await runner.run([Envelope.wrap(make_inbound("hi", channel="recording",
        ...                                              bot_id="t"))], attempt=1)
    """
    settings = Settings(bots={bot_id: {"channel": adapter.channel, "app": "unused:app"}},
                        key_prefix=key_prefix)
    keys = KeyBuilder(prefix=key_prefix)
    runtime = Runtime(settings=settings, keys=keys, redis=redis, http=httpx.AsyncClient())
    runtime.adapters[bot_id] = adapter
    runtime.apps[bot_id] = app
    return TurnRunner(runtime, RedisSessionStore(redis, keys), flows=flows)
