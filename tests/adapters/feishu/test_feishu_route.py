"""Through the real webhook route (web app in-process, real Redis, no worker): what is
refused queues nothing; redeliveries of one message queue it once; the bot's open_id is
looked up at start-up when not configured."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_feishu import FakeFeishu, create_app
from feishu_helpers import APP_ID, APP_SECRET, BOT_OPEN_ID, ENCRYPT_KEY, TOKEN, message_event
from feishu_helpers import signed as signed_request

from botcore.channel import WebhookRequest
from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack

pytestmark = pytest.mark.integration

#: The decryption example of Feishu's 接收事件 page (platforms.md 5.4): "hello world".
VECTOR_KEY = "test key"
VECTOR_ENCRYPT = "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk="


@pytest.fixture
def fake_server() -> Iterator[tuple[FakeFeishu, str]]:
    state = FakeFeishu(app_id=APP_ID, app_secret=APP_SECRET)
    with serve_in_thread(create_app(state)) as base_url:
        yield state, base_url


@pytest.fixture
async def stack(clean_redis: str, tmp_path: Path,
                fake_server: tuple[FakeFeishu, str]) -> AsyncIterator[BotStack]:
    common = {"channel": "feishu", "app": "tests.adapters.feishu.feishu_stream_bot:app",
              "app_id": APP_ID, "app_secret": APP_SECRET, "verification_token": TOKEN,
              "api_base": fake_server[1]}
    bots = BotStack(clean_redis, tmp_path, {"bots": {
        "fs": {**common, "encrypt_key": ENCRYPT_KEY, "bot_open_id": BOT_OPEN_ID},
        "fv": {**common, "encrypt_key": VECTOR_KEY},  # no bot_open_id: looked up
    }})
    try:
        yield bots
    finally:
        await bots.close()


def _now() -> str:
    return str(int(time.time()))


async def _post(client: httpx.AsyncClient, bot: str, request: WebhookRequest) -> httpx.Response:
    return await client.post(f"/webhooks/feishu/{bot}", content=request.body,
                             headers=dict(request.headers))


async def _queued(stack: BotStack) -> list[dict[str, Any]]:
    """Every message waiting in any inbox."""
    found: list[dict[str, Any]] = []
    async for key in stack.redis.scan_iter(match=f"{stack.keys.prefix}:inbox:*"):
        for raw in await stack.redis.lrange(key, 0, -1):  # type: ignore[misc]
            found.append(json.loads(raw)["message"])
    return found


async def test_bad_signature_is_refused_and_nothing_queued(stack: BotStack) -> None:
    good = signed_request(message_event("hi", event_id="ev-r1"), ts=_now())
    forged = WebhookRequest(good.method, {**good.headers, "x-lark-signature": "0" * 64},
                            good.query, good.body)
    async with stack.client() as client:
        response = await _post(client, "fs", forged)
        assert (response.status_code, response.json()) == (401, {"error": "bad_signature"})
        assert await _queued(stack) == []
        assert (await _post(client, "fs", good)).status_code == 200  # the control
        assert [m["text"] for m in await _queued(stack)] == ["hi"]


async def test_official_vector_is_decrypted_and_refused_as_not_json(stack: BotStack) -> None:
    body = json.dumps({"encrypt": VECTOR_ENCRYPT}).encode()
    request = signed_request(body, key=VECTOR_KEY, encrypt=False, ts=_now())
    async with stack.client() as client:
        response = await _post(client, "fv", request)  # signature fine, plaintext "hello world"
        assert (response.status_code, response.json()) == (400, {"error": "malformed_json"})
        stale = signed_request(body, key=VECTOR_KEY, encrypt=False, ts="1400000000")
        response = await _post(client, "fv", stale)
        assert (response.status_code, response.json()) == (401, {"error": "stale_timestamp"})
    assert await _queued(stack) == []


async def test_redeliveries_of_one_message_are_queued_once(stack: BotStack) -> None:
    request = signed_request(message_event("once", event_id="ev-a"), ts=_now())
    renamed = signed_request(message_event("once", event_id="ev-b"), ts=_now())
    async with stack.client() as client:
        for attempt in (request, request, renamed):  # same nonce; then a new event_id
            assert (await _post(client, "fs", attempt)).status_code == 200
    queued = await _queued(stack)
    assert [(m["text"], m["event_id"]) for m in queued] == [("once", "msg:om_1")]


async def test_open_id_looked_up_at_startup_decides_group_mentions(
        stack: BotStack, fake_server: tuple[FakeFeishu, str]) -> None:
    fake = fake_server[0]
    ours = {"key": "@_user_1", "id": {"open_id": fake.bot_open_id}, "name": "Helpdesk"}
    other = {"key": "@_user_1", "id": {"open_id": "ou_other_bot"}, "name": "Other"}
    async with stack.client() as client:  # lifespan: startup looks the open_id up
        assert "GET /open-apis/bot/v3/info" in fake.calls
        for n, mention in enumerate((ours, other)):
            event = message_event("@_user_1 hi", event_id=f"ev-m{n}", chat_type="group",
                                  message_id=f"om_m{n}", mentions=[mention])
            request = signed_request(event, key=VECTOR_KEY, ts=_now())
            assert (await _post(client, "fv", request)).status_code == 200
    mentioned = {m["message_id"]: m["mentioned"] for m in await _queued(stack)}
    assert mentioned == {"om_m0": True, "om_m1": False}
