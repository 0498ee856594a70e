"""The composition root: builds clients, adapters and apps from settings, once per process.

Nothing here runs at import. The web process builds a :class:`Runtime` in its lifespan, the
worker in its process-init hook; both pass it down explicitly (style rule R5).
Adapters and flows are found by name through entry points, so botcore never imports them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import httpx
from redis.asyncio import Redis

from botcore.channel import AdapterDeps, ChannelAdapter
from botcore.errors import ConfigError
from botcore.keys import KeyBuilder
from botcore.redis_client import connect
from botcore.settings import BotConfig, Settings

if TYPE_CHECKING:
    from botcore.app import BotApp

__all__ = ["Runtime", "load_adapter_class", "load_bot_app"]


def load_adapter_class(channel: str) -> type[ChannelAdapter]:
    """The adapter class registered for ``channel`` (entry point group ``botcore.adapters``)."""
    found = {ep.name: ep for ep in entry_points(group="botcore.adapters")}
    if channel not in found:
        raise ConfigError("channel", f"one of {sorted(found)}", repr(channel))
    cls: type[ChannelAdapter] = found[channel].load()
    return cls


def load_bot_app(bot: BotConfig) -> BotApp:
    """Import the bot's ``module:attribute`` and check it is a BotApp."""
    from botcore.app import BotApp

    module_name, _, attr = bot.app.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"bots.{bot.id}.app", "an importable module", f"{exc}") from None
    app = getattr(module, attr, None)
    if not isinstance(app, BotApp):
        raise ConfigError(f"bots.{bot.id}.app", "a BotApp instance", type(app).__name__)
    return app


@dataclass
class Runtime:
    """Everything a process needs, built from settings and passed down explicitly.

    Attributes:
        settings: the validated settings.
        keys: the one key builder.
        redis: asyncio Redis client (bytes responses).
        http: shared HTTP client for platform APIs.
        adapters: one adapter per bot id.
        apps: one BotApp per bot id.
    """

    settings: Settings
    keys: KeyBuilder
    redis: Redis
    http: httpx.AsyncClient
    adapters: dict[str, ChannelAdapter] = field(default_factory=dict)
    apps: dict[str, BotApp] = field(default_factory=dict)
    web_fronts: dict[str, ChannelAdapter] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, *, redis_url: str | None = None,
              http: httpx.AsyncClient | None = None) -> Runtime:
        """Build clients, adapters and apps. Raises ConfigError on any bad bot setting.

        No network I/O happens here (Redis connects lazily); call :meth:`startup` next.
        """
        url = redis_url or settings.redis_url
        if not url:
            raise ConfigError("redis_url", "a Redis URL (the embedded server sets one)")
        keys = KeyBuilder(prefix=settings.key_prefix)
        runtime = cls(settings=settings, keys=keys, redis=connect(url),
                      http=http or httpx.AsyncClient(timeout=httpx.Timeout(15.0)))
        deps = AdapterDeps(redis=runtime.redis, http=runtime.http, keys=keys)
        web_cls = load_adapter_class("web")
        for bot_id, bot in settings.bots.items():
            adapter_cls = load_adapter_class(bot.channel)
            runtime.adapters[bot_id] = adapter_cls(bot, deps)  # type: ignore[call-arg]
            runtime.apps[bot_id] = load_bot_app(bot)
            # A bot of another channel is reachable from the web chat, the widget and the
            # OpenAI API only when asked for: a [bots.<id>.web] table or api_keys.
            if bot.channel != "web" and (bot.web or bot.api_keys):
                front = BotConfig(id=bot_id, channel="web", app=bot.app, name=bot.name,
                                  **bot.web)
                runtime.web_fronts[bot_id] = web_cls(front, deps)  # type: ignore[call-arg]
        return runtime

    def adapter_for(self, bot_id: str, channel: str) -> ChannelAdapter:
        """The adapter that answers ``bot_id``'s messages arriving on ``channel``.

        A bot answers on its own channel, and on ``web`` (web chat, widget, OpenAI API)
        through its web front.
        """
        adapter = self.adapters.get(bot_id)
        if adapter is not None and adapter.channel == channel:
            return adapter
        front = self.web_fronts.get(bot_id)
        if channel == "web" and front is not None:
            return front
        raise ConfigError(f"bots.{bot_id}", f"a bot that answers on channel {channel!r}")

    async def startup(self) -> None:
        """Start every adapter (may register webhooks: network I/O)."""
        for adapter in [*self.adapters.values(), *self.web_fronts.values()]:
            await adapter.startup()

    async def close(self) -> None:
        """Stop adapters, close clients."""
        for adapter in [*self.adapters.values(), *self.web_fronts.values()]:
            await adapter.shutdown()
        await self.http.aclose()
        await self.redis.aclose()
