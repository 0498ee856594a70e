"""Fixtures for the Feishu adapter tests: the fake Open Platform and adapter builders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fake_feishu import FakeFeishu, create_app
from feishu_helpers import APP_ID, APP_SECRET, BOT_OPEN_ID, ENCRYPT_KEY, NOW, TOKEN, MakeAdapter
from redis.asyncio import Redis

from adapters.feishu import FeishuAdapter
from botcore.channel import AdapterDeps
from botcore.keys import KeyBuilder
from botcore.settings import BotConfig


@pytest.fixture
def fake() -> FakeFeishu:
    """The fake platform's state."""
    return FakeFeishu(app_id=APP_ID, app_secret=APP_SECRET)


@pytest.fixture
async def http(fake: FakeFeishu) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose every request goes to the fake server."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(fake))) as client:
        yield client


@pytest.fixture
def make_adapter(redis: Redis, keys: KeyBuilder, http: httpx.AsyncClient) -> MakeAdapter:
    """Build a FeishuAdapter; keyword arguments override ``[bots.fs]`` keys (None drops)."""

    def build(**options: Any) -> FeishuAdapter:
        values: dict[str, Any] = {"app_id": APP_ID, "app_secret": APP_SECRET,
                                  "verification_token": TOKEN, "encrypt_key": ENCRYPT_KEY,
                                  "bot_open_id": BOT_OPEN_ID}
        values |= options
        values = {k: v for k, v in values.items() if v is not None}
        bot = BotConfig(id="fs", channel="feishu", app="examples.bot:app", **values)
        adapter = FeishuAdapter(bot, AdapterDeps(redis=redis, http=http, keys=keys))
        adapter.clock = lambda: NOW
        return adapter

    return build
