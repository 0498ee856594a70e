"""Forged webhooks through the real route (FastAPI app in-process, real Redis): refused, and
nothing reaches the Redis inbox or the drain queue."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from conftest import SECRET
from fake_telegram import BOT_USER, TOKEN, FakeTelegram, serve_in_thread
from redis.asyncio import Redis
from tg_updates import GROUP, message

from botcore.keys import KeyBuilder
from botcore.settings import Settings, load_settings
from botcore.web.app import create_app

KEYS = KeyBuilder(prefix="tgroute")
ROUTE = "/webhooks/telegram/tg1"


class RecordingEnqueuer:
    """Records drain requests instead of queueing Celery tasks."""

    def __init__(self) -> None:
        self.scheduled: list[str] = []

    async def schedule(self, conversation_id: str) -> None:
        self.scheduled.append(conversation_id)


@pytest.fixture
def base_url() -> Iterator[str]:
    with serve_in_thread(FakeTelegram()) as base:  # start-up calls getMe
        yield base


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_url: str) -> Settings:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    bot = {"channel": "telegram", "app": "examples.support_bot:app", "token": TOKEN,
           "bot_username": BOT_USER["username"], "secret_token": SECRET, "api_base": base_url}
    return load_settings(bots={"tg1": bot}, key_prefix=KEYS.prefix)


@asynccontextmanager
async def serve(settings: Settings, url: str,
                enqueuer: RecordingEnqueuer) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, redis_url=url, enqueuer=enqueuer, listen=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def stored(redis: Redis) -> list[bytes]:
    """Every key the ingress could have written (inbox, dedupe marker, dirty set)."""
    found = [key async for key in redis.scan_iter(f"{KEYS.prefix}:*")]
    return sorted(found)


@pytest.mark.parametrize(("headers", "status"), [
    ({}, 403),
    ({"x-telegram-bot-api-secret-token": ""}, 403),
    ({"x-telegram-bot-api-secret-token": "wrong-secret"}, 401),
    ({"x-telegram-bot-api-secret-token": SECRET + "x"}, 401),
    ({"x-telegram-bot-api-secret-token": SECRET.upper()}, 401),
])
async def test_bad_secret_is_refused_and_nothing_is_queued(
        settings: Settings, clean_redis: str, redis: Redis, headers: dict[str, str],
        status: int) -> None:
    enqueuer = RecordingEnqueuer()
    update = message("hello", chat=GROUP, update_id=4242)
    body = json.dumps(update).encode()
    async with serve(settings, clean_redis, enqueuer) as client:
        response = await client.post(ROUTE, content=body,
                                     headers={"content-type": "application/json", **headers})
        assert response.status_code == status
        assert SECRET not in response.text
        conversation = f"telegram:tg1:{GROUP['id']}"
        assert await redis.llen(KEYS.inbox(conversation)) == 0
        assert await stored(redis) == []
        assert enqueuer.scheduled == []
        # The same update with the right secret is stored: the checks above can fail.
        good = await client.post(ROUTE, content=body, headers={
            "content-type": "application/json", "x-telegram-bot-api-secret-token": SECRET})
        assert good.status_code == 200
    assert await redis.llen(KEYS.inbox(conversation)) == 1
    assert enqueuer.scheduled == [conversation]
