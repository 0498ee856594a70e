"""Fixtures for the WeCom adapter tests: the fake WeCom server behind httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fake_wecom import FakeWeCom
from redis.asyncio import Redis
from wecom_testkit import VEC_CORP, bot

from adapters.wecom import WeComAdapter
from botcore.channel import AdapterDeps
from botcore.keys import KeyBuilder


@pytest.fixture
def fake() -> FakeWeCom:
    """A fresh fake WeCom whose corp id is the official vector's."""
    return FakeWeCom(corp_id=VEC_CORP)


@pytest.fixture
async def http(fake: FakeWeCom) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose every request goes to the fake (no network)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app)) as client:
        yield client


@pytest.fixture
def deps(redis: Redis, http: httpx.AsyncClient, keys: KeyBuilder) -> AdapterDeps:
    """Real Redis, fake WeCom."""
    return AdapterDeps(redis=redis, http=http, keys=keys)


@pytest.fixture
def make_adapter(deps: AdapterDeps) -> Callable[..., WeComAdapter]:
    """Build an adapter from options, its clock pinned to ``now``."""
    def build(options: dict[str, Any], now: float = 1409659813.0,
              bot_id: str = "wc") -> WeComAdapter:
        adapter = WeComAdapter(bot(options, bot_id), deps)
        adapter.clock = lambda: now
        return adapter
    return build
