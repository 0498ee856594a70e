"""The webhook route and health probes, in-process over ASGI, on a real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from botcore.ingress.inbox import Envelope
from botcore.keys import KeyBuilder
from botcore.queue.celery_app import record_heartbeat
from botcore.redis_server import RedisProcess
from botcore.settings import Settings, load_settings
from botcore.web.app import create_app

BOTS: dict[str, dict[str, Any]] = {
    "demo": {"channel": "web", "app": "tests.bots.pipeline_bot:app"},
    "locked": {"channel": "web", "app": "tests.bots.pipeline_bot:app",
               "access_key": "k-123"},
    "tight": {"channel": "web", "app": "tests.bots.pipeline_bot:app",
              "messages_per_minute": 2},
}
KEYS = KeyBuilder(prefix="routetest")
CONV = "web:demo:c-1"


class _RecordingEnqueuer:
    def __init__(self, fail: bool = False) -> None:
        self.scheduled: list[str] = []
        self.fail = fail

    async def schedule(self, conversation_id: str) -> None:
        self.scheduled.append(conversation_id)
        if self.fail:
            raise ConnectionError("broker down")


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    return load_settings(bots=BOTS, key_prefix=KEYS.prefix,
                         ingress={"max_body_bytes": 2048})


@asynccontextmanager
async def _serve(settings: Settings, url: str,
                 enqueuer: _RecordingEnqueuer) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings, redis_url=url, enqueuer=enqueuer, listen=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


def _body(text: str = "hi", msg_id: str = "m-1", **extra: Any) -> dict[str, Any]:
    return {"conversation_id": "c-1", "user_id": "u-1", "text": text,
            "client_msg_id": msg_id, **extra}


async def _inbox_texts(redis: Redis, conv: str = CONV) -> list[str]:
    raw = await redis.lrange(KEYS.inbox(conv), 0, -1)
    return [Envelope.model_validate_json(item).message.text for item in raw]


async def test_accepted_message_is_stored_scheduled_and_acked(
        settings: Settings, clean_redis: str, redis: Redis) -> None:
    enqueuer = _RecordingEnqueuer()
    async with _serve(settings, clean_redis, enqueuer) as client:
        response = await client.post("/webhooks/web/demo", json=_body("hello"))
        assert response.status_code == 200
        assert response.json() == {"ok": True, "conversation_id": "c-1",
                                   "client_msg_id": "m-1"}
        again = await client.post("/webhooks/web/demo", json=_body("hello"))
        assert again.status_code == 200  # a retried POST is acknowledged...
        second = await client.post("/webhooks/web/demo", json=_body("more", msg_id="m-2"))
        assert second.status_code == 200
    assert await _inbox_texts(redis) == ["hello", "more"]  # ...but stored once
    assert enqueuer.scheduled == [CONV]  # one drain queued for the burst


async def test_a_conversation_over_its_message_limit_gets_429(
        settings: Settings, clean_redis: str, redis: Redis) -> None:
    async with _serve(settings, clean_redis, _RecordingEnqueuer()) as client:
        codes = [(await client.post("/webhooks/web/tight", json=_body(f"m{n}", f"id{n}")))
                 .status_code for n in range(3)]
        other = await client.post("/webhooks/web/tight",
                                  json={**_body("x", "id9"), "conversation_id": "c-2"})
        metrics = (await client.get("/metrics")).text
    assert codes == [200, 200, 429]
    assert other.status_code == 200  # the limit is per conversation
    assert await _inbox_texts(redis, "web:tight:c-1") == ["m0", "m1"]  # nothing stored
    assert 'botcore_webhook_requests_total{channel="web",outcome="limited"} 1.0' in metrics


async def test_enqueue_failure_still_acknowledges(settings: Settings, clean_redis: str,
                                                  redis: Redis) -> None:
    enqueuer = _RecordingEnqueuer(fail=True)
    async with _serve(settings, clean_redis, enqueuer) as client:
        response = await client.post("/webhooks/web/demo", json=_body())
    assert response.status_code == 200  # durable already: the sweeper schedules it
    assert await _inbox_texts(redis) == ["hi"]
    assert await redis.sismember(KEYS.dirty(), CONV)


@pytest.mark.parametrize(("channel", "bot_id"), [("web", "nope"), ("telegram", "demo")])
async def test_unknown_bot_404_with_hint(settings: Settings, clean_redis: str, redis: Redis,
                                         channel: str, bot_id: str) -> None:
    enqueuer = _RecordingEnqueuer()
    async with _serve(settings, clean_redis, enqueuer) as client:
        response = await client.post(f"/webhooks/{channel}/{bot_id}", json=_body())
    assert response.status_code == 404
    data = response.json()
    assert bot_id in data["error"]
    assert "/webhooks/<channel>/<bot id>" in data["hint"]
    assert enqueuer.scheduled == []
    assert await redis.keys(f"{KEYS.prefix}:*") == []


async def test_body_over_limit_413(settings: Settings, clean_redis: str, redis: Redis) -> None:
    enqueuer = _RecordingEnqueuer()
    async with _serve(settings, clean_redis, enqueuer) as client:
        big = json.dumps(_body("x" * 3000)).encode()
        response = await client.post("/webhooks/web/demo", content=big,
                                     headers={"content-type": "application/json"})
        assert response.status_code == 413
        assert response.json() == {"error": "body too large"}

        async def chunks() -> AsyncIterator[bytes]:  # no content-length: counted while read
            for _ in range(3):
                yield b"x" * 1000

        streamed = await client.post("/webhooks/web/demo", content=chunks())
        assert streamed.status_code == 413
    assert await _inbox_texts(redis) == []
    assert enqueuer.scheduled == []


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), [
    ("GET", "/webhooks/web/demo", None, {}, 405),
    ("POST", "/webhooks/web/demo", b"{not json", {}, 400),
    ("POST", "/webhooks/web/demo", json.dumps({"text": "hi"}).encode(), {}, 400),
    ("POST", "/webhooks/web/locked", json.dumps(_body()).encode(), {}, 401),
    ("POST", "/webhooks/web/locked", json.dumps(_body()).encode(),
     {"x-botcore-key": "wrong"}, 401),
    ("POST", "/webhooks/web/demo", json.dumps(_body()).encode(),
     {"origin": "https://evil.example"}, 403),
])
async def test_rejected_outcome_gives_its_status(
        settings: Settings, clean_redis: str, redis: Redis, method: str, path: str,
        body: bytes | None, headers: dict[str, str], status: int) -> None:
    enqueuer = _RecordingEnqueuer()
    async with _serve(settings, clean_redis, enqueuer) as client:
        response = await client.request(method, path, content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]
    assert "k-123" not in response.text
    assert await redis.keys(f"{KEYS.prefix}:*") == []
    assert enqueuer.scheduled == []


async def test_right_access_key_accepted(settings: Settings, clean_redis: str,
                                         redis: Redis) -> None:
    async with _serve(settings, clean_redis, _RecordingEnqueuer()) as client:
        response = await client.post("/webhooks/web/locked", json=_body(),
                                     headers={"X-Botcore-Key": "k-123"})
    assert response.status_code == 200
    assert await _inbox_texts(redis, "web:locked:c-1") == ["hi"]


async def test_redis_down_503_and_nothing_acknowledged(settings: Settings,
                                                       tmp_path: Path) -> None:
    server = RedisProcess(tmp_path / "private-redis", appendonly=False).start()
    enqueuer = _RecordingEnqueuer()
    try:
        async with _serve(settings, server.url, enqueuer) as client:
            ok = await client.post("/webhooks/web/demo", json=_body("before"))
            assert ok.status_code == 200
            server.kill()
            response = await client.post("/webhooks/web/demo",
                                         json=_body("after", msg_id="m-2"))
            assert response.status_code == 503
            assert "retry" in response.json()["error"]
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["redis"].startswith("unreachable")
    finally:
        server.stop()
    assert enqueuer.scheduled == ["web:demo:c-1"]  # only the first message


async def test_healthz(settings: Settings, clean_redis: str) -> None:
    async with _serve(settings, clean_redis, _RecordingEnqueuer()) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_workers_variant_needs_a_worker_heartbeat(
        settings: Settings, clean_redis: str, redis: Redis) -> None:
    # Plain /readyz is about this web process only (see tests/unit/test_worker_heartbeats.py)
    async with _serve(settings, clean_redis, _RecordingEnqueuer()) as client:
        assert (await client.get("/readyz")).status_code == 200
        before = await client.get("/readyz?workers=1")
        assert before.status_code == 503
        assert before.json()["redis"] == "ok"
        assert before.json()["worker"] != "ok"
        await record_heartbeat(redis, KEYS, "w-1")
        after = await client.get("/readyz?workers=1")
        assert after.status_code == 200
        assert after.json() == {"status": "ready", "redis": "ok", "runtime": "ok",
                                "workers": 1, "worker": "ok"}
