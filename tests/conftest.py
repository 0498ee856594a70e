"""Shared fixtures: a real redis-server for the whole run, a clean database per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from botcore.redis_server import RedisProcess


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """BOTCORE_TEST_REDIS_URL if set (CI starts redis-server from apt), else a private
    redis-server process for this test run."""
    url = os.environ.get("BOTCORE_TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisProcess(Path(tmp_path_factory.mktemp("redis")), appendonly=False).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """The Redis URL, with its database flushed before the test."""
    client = redis_sync.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


@pytest.fixture
async def redis(clean_redis: str) -> AsyncIterator[Redis]:
    """An asyncio client on a flushed database."""
    client = Redis.from_url(clean_redis)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def keys() -> KeyBuilder:
    """The key builder tests use."""
    return KeyBuilder(prefix="test")
