"""Worker heartbeats in one sorted set; /readyz means "this web process can store webhooks"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from botcore.queue.celery_app import (
    HEARTBEAT_TTL,
    forget_worker,
    live_workers,
    record_heartbeat,
)
from botcore.settings import Settings, load_settings
from botcore.web.app import create_app

KEYS = KeyBuilder(prefix="beat")


class _NoQueue:
    async def schedule(self, conversation_id: str) -> None:
        """Drains are not what these tests look at."""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    return load_settings(key_prefix=KEYS.prefix, bots={
        "demo": {"channel": "web", "app": "examples.support_bot:app"}})


@asynccontextmanager
async def _serve(settings: Settings, url: str) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, redis_url=url, enqueuer=_NoQueue(), listen=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def _scans(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


async def test_live_workers_counts_fresh_beats_only(redis: Redis) -> None:
    assert await live_workers(redis, KEYS) == 0
    await record_heartbeat(redis, KEYS, "host-1")
    await record_heartbeat(redis, KEYS, "host-2")
    await record_heartbeat(redis, KEYS, "host-2")
    assert await live_workers(redis, KEYS) == 2
    # a worker that died without saying so: its beat is older than the TTL
    seconds, _ = await redis.time()
    await redis.zadd(KEYS.workers(), {"dead": seconds - HEARTBEAT_TTL - 5})
    assert await live_workers(redis, KEYS) == 2
    await record_heartbeat(redis, KEYS, "host-1")  # a beat prunes the dead ones
    assert await redis.zscore(KEYS.workers(), "dead") is None
    await forget_worker(redis, KEYS, "host-2")  # a clean stop counts at once
    assert await live_workers(redis, KEYS) == 1
    assert await redis.exists(KEYS.worker_heartbeat("host-1")) == 1
    assert await redis.exists(KEYS.worker_heartbeat("host-2")) == 0


async def test_readyz_is_green_without_workers_and_reports_them(
        settings: Settings, clean_redis: str, redis: Redis) -> None:
    async with _serve(settings, clean_redis) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "redis": "ok", "runtime": "ok",
                                "workers": 0}
        strict = await client.get("/readyz", params={"workers": 1})
        assert strict.status_code == 503
        assert strict.json()["worker"] == "no live worker heartbeat"
        await record_heartbeat(redis, KEYS, "w-1")
        strict = await client.get("/readyz", params={"workers": 1})
        assert strict.status_code == 200
        assert strict.json()["workers"] == 1
        assert strict.json()["worker"] == "ok"


async def test_probes_never_scan_the_keyspace(settings: Settings, clean_redis: str,
                                              redis: Redis) -> None:
    await record_heartbeat(redis, KEYS, "w-1")
    async with _serve(settings, clean_redis) as client:
        before = await _scans(redis)
        for _ in range(5):
            assert (await client.get("/readyz")).status_code == 200
            assert (await client.get("/readyz?workers=1")).status_code == 200
        assert await _scans(redis) == before


async def test_metrics_expose_live_workers(settings: Settings, clean_redis: str,
                                           redis: Redis) -> None:
    await record_heartbeat(redis, KEYS, "w-1")
    await record_heartbeat(redis, KEYS, "w-2")
    async with _serve(settings, clean_redis) as client:
        text = (await client.get("/metrics")).text
    assert "botcore_workers_live 2.0" in text
    assert "botcore_webhook_requests" in text or "botcore_inbox_pending" in text
