"""End to end: Telegram update -> webhook route (or getUpdates) -> Redis inbox -> real Celery
worker -> TelegramAdapter.send -> the fake Bot API (uvicorn on loopback) receives the answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SECRET
from fake_telegram import BOT_USER, TOKEN, FakeTelegram, parse_html, serve_in_thread
from tg_updates import GROUP, entity, message

from botcore.testing.stack import BotStack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram()
    with serve_in_thread(fake) as base:
        yield fake, base


def stack_for(redis_url: str, tmp_path: Path, base: str, **options: Any) -> BotStack:
    bot = {"channel": "telegram", "app": "examples.support_bot:app", "token": TOKEN,
           "bot_username": BOT_USER["username"], "api_base": base, **options}
    return BotStack(redis_url, tmp_path, {
        "bots": {"tg1": bot}, "ingress": {"lease_ttl": 2.0, "sweep_interval": 0.2}})


def answers(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [parse_html(c["text"]) for c in fake.calls_to("sendMessage")
            if c["chat_id"] == chat_id]


async def test_webhook_update_in_answer_out(clean_redis: str, tmp_path: Path,
                                            served_fake: tuple[FakeTelegram, str]) -> None:
    fake, base = served_fake
    stack = stack_for(clean_redis, tmp_path, base, secret_token=SECRET)
    headers = {"x-telegram-bot-api-secret-token": SECRET, "content-type": "application/json"}
    text = "@botcore_bot 退货怎么办"
    update = message(text, chat=GROUP, update_id=9001, message_id=77,
                     entities=[entity("mention", 0, 12)])
    body = json.dumps(update).encode()
    try:
        stack.start_worker()
        async with stack.client() as client:
            forged = await client.post("/webhooks/telegram/tg1", content=body,
                                       headers={**headers,
                                                "x-telegram-bot-api-secret-token": "nope"})
            assert 400 <= forged.status_code < 500
            response = await client.post("/webhooks/telegram/tg1", content=body,
                                         headers=headers)
            assert response.status_code == 200
            again = await client.post("/webhooks/telegram/tg1", content=body, headers=headers)
            assert again.status_code == 200  # Telegram re-delivery: deduped on update_id

            async def answered() -> bool:
                return bool(answers(fake, GROUP["id"]))

            await wait_until(answered, timeout=20)
        await asyncio.sleep(0.5)  # a duplicate answer would show up by now
        (reply,) = answers(fake, GROUP["id"])
        assert "7 天" in reply
        (call,) = fake.calls_to("sendMessage")
        assert call["parse_mode"] == "HTML"
        assert call["reply_parameters"]["message_id"] == 77
    finally:
        await stack.close()


async def test_polled_update_in_answer_out(clean_redis: str, tmp_path: Path,
                                           served_fake: tuple[FakeTelegram, str]) -> None:
    fake, base = served_fake
    stack = stack_for(clean_redis, tmp_path, base, mode="polling", poll_timeout=1)
    fake.push_update(message("/start", update_id=300, entities=[entity("bot_command", 0, 6)]))
    try:
        stack.start_worker()
        async with stack.client():  # the lifespan runs listen()

            async def answered() -> bool:
                return bool(answers(fake, 1111))

            await wait_until(answered, timeout=20)
            await wait_until(lambda: _confirmed(fake, 301), timeout=10)
        assert "退货" in answers(fake, 1111)[0]
        assert fake.calls_to("deleteWebhook")
    finally:
        await stack.close()


async def _confirmed(fake: FakeTelegram, offset: int) -> bool:
    return any(c.get("offset") == offset for c in fake.calls_to("getUpdates"))
