"""Fixtures for the Telegram adapter tests: a fake Bot API behind httpx.ASGITransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fake_telegram import BOT_USER, TOKEN, FakeTelegram
from redis.asyncio import Redis

from adapters.telegram import TelegramAdapter
from adapters.telegram.api import Limits, TelegramClient
from botcore.channel import AdapterDeps, WebhookRequest
from botcore.keys import KeyBuilder
from botcore.settings import BotConfig

SECRET = "s3cr3t_TOKEN-abc"
API_BASE = "http://fake-telegram"
FAST = Limits(per_chat=(1000.0, 1000.0), per_group=(1000, 1.0), per_bot=(1000.0, 1000.0))
MakeAdapter = Callable[..., TelegramAdapter]


def bot_config(**options: Any) -> BotConfig:
    """A Telegram bot's settings; ``options`` override the defaults."""
    base: dict[str, Any] = {"token": TOKEN, "bot_username": BOT_USER["username"],
                            "secret_token": SECRET, "api_base": API_BASE}
    base.update(options)
    return BotConfig(id="tg", channel="telegram", app="examples.demo:app", **base)


def webhook(update: dict[str, Any] | bytes, secret: str | None = SECRET,
            method: str = "POST") -> WebhookRequest:
    """A webhook request as the web layer hands it to the adapter."""
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["x-telegram-bot-api-secret-token"] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return WebhookRequest(method=method, headers=headers, query={}, body=body)


@pytest.fixture
def fake() -> FakeTelegram:
    """A fresh fake Bot API server."""
    return FakeTelegram()


@pytest.fixture
async def http(fake: FakeTelegram) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose every request goes to the fake."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        yield client


@pytest.fixture
def make_adapter(redis: Redis, keys: KeyBuilder, http: httpx.AsyncClient) -> MakeAdapter:
    """Build an adapter on the fake; ``limits`` default to no pacing."""

    def build(limits: Limits = FAST, **options: Any) -> TelegramAdapter:
        adapter = TelegramAdapter(bot_config(**options), AdapterDeps(redis=redis, http=http,
                                                                      keys=keys))
        token = adapter.config.token.get_secret_value()
        adapter.client = TelegramClient(http, adapter.config.api_base, token, "tg", redis,
                                        keys, limits)
        return adapter

    return build


@pytest.fixture
def adapter(make_adapter: MakeAdapter) -> TelegramAdapter:
    """A webhook-mode adapter on the fake server."""
    return make_adapter()
