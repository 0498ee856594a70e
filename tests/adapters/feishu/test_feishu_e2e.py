"""End to end: encrypted, signed Feishu event -> webhook route -> Redis inbox -> real Celery
worker -> FeishuAdapter -> CardKit stream at the fake Feishu server (uvicorn on loopback)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_feishu import FakeFeishu, create_app
from feishu_helpers import APP_ID, APP_SECRET, BOT_OPEN_ID, ENCRYPT_KEY, TOKEN, message_event
from feishu_helpers import signed as signed_request

from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def fake_server() -> Iterator[tuple[FakeFeishu, str]]:
    state = FakeFeishu(app_id=APP_ID, app_secret=APP_SECRET)
    with serve_in_thread(create_app(state)) as base_url:
        yield state, base_url


@pytest.fixture
async def stack(clean_redis: str, tmp_path: Path,
                fake_server: tuple[FakeFeishu, str]) -> AsyncIterator[BotStack]:
    bot = {"channel": "feishu", "app": "tests.adapters.feishu.feishu_stream_bot:app",
           "app_id": APP_ID, "app_secret": APP_SECRET, "verification_token": TOKEN,
           "encrypt_key": ENCRYPT_KEY, "bot_open_id": BOT_OPEN_ID, "api_base": fake_server[1]}
    bots = BotStack(clean_redis, tmp_path, {
        "bots": {"fs": bot}, "ingress": {"lease_ttl": 2.0, "sweep_interval": 0.2}})
    try:
        yield bots
    finally:
        await bots.close()


async def _post(client: httpx.AsyncClient, payload: dict[str, Any]) -> httpx.Response:
    request = signed_request(payload, ts=str(int(time.time())))
    return await client.post("/webhooks/feishu/fs", content=request.body,
                             headers=dict(request.headers))


async def _finished_cards(state: FakeFeishu, count: int, timeout: float = 30) -> None:
    async def done() -> bool:
        return sum(c["streaming_mode"] is False for c in state.cards.values()) >= count
    await wait_until(done, timeout)


async def test_encrypted_event_gets_a_streamed_card_answer(
        stack: BotStack, fake_server: tuple[FakeFeishu, str]) -> None:
    state = fake_server[0]
    stack.start_worker()
    async with stack.client() as client:
        response = await _post(client, message_event("退货怎么办", event_id="ev-e2e-1"))
        assert response.status_code == 200
        await _finished_cards(state, 1)
    (card,) = state.cards.values()
    assert card["contents"][-1].strip() == "you said: 退货怎么办"
    assert card["sequences"] == sorted(set(card["sequences"]))
    (msg,) = state.messages
    assert msg["msg_type"] == "interactive"
    assert msg["parent_id"] == "om_1"  # a reply to the inbound message


async def test_same_event_three_times_gives_one_answer(
        stack: BotStack, fake_server: tuple[FakeFeishu, str]) -> None:
    state = fake_server[0]
    stack.start_worker()
    async with stack.client() as client:
        for _ in range(3):  # Feishu re-pushes: new timestamp and nonce, same event_id
            response = await _post(client, message_event("once", event_id="ev-e2e-dup",
                                                       message_id="om_once"))
            assert response.status_code == 200
        await _finished_cards(state, 1)
        await _post(client, message_event("after", event_id="ev-e2e-next",
                                            message_id="om_after"))
        await _finished_cards(state, 2)
    finals = sorted(c["contents"][-1].strip() for c in state.cards.values())
    assert finals == ["you said: after", "you said: once"]
    assert len(state.messages) == 2
