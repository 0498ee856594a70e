"""HTTP mode through the real webhook route (FastAPI app, real Redis inbox, no worker):
what is queued, what is refused, and what a redelivery does."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dingtalk_support import robot_message, signed_request

from adapters.dingtalk.crypto import CallbackCrypto
from botcore.channel import WebhookRequest
from botcore.errors import IngressError
from botcore.message import ConversationKey
from botcore.testing.stack import BotStack
from botcore.web.app import create_app

SECRET = "app-secret"
AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
CONV = ConversationKey(channel="dingtalk", bot_id="b1", chat_id="cidGroup==")


class Route:
    """The web app for one DingTalk bot plus a view of its Redis inbox."""

    def __init__(self, stack: BotStack, app: Any, client: httpx.AsyncClient) -> None:
        self.stack = stack
        self.app = app
        self.client = client

    async def post(self, request: WebhookRequest) -> httpx.Response:
        return await self.client.post("/webhooks/dingtalk/b1", content=request.body,
                                      headers=dict(request.headers), params=request.query)

    async def queued(self) -> list[str]:
        """msgIds in the conversation's inbox, oldest first."""
        raw: list[bytes] = await self.stack.redis.lrange(  # type: ignore[misc]
            self.stack.keys.inbox(CONV.id), 0, -1)
        return [json.loads(entry)["message"]["event_id"] for entry in raw]


@pytest.fixture
async def route(clean_redis: str, tmp_path: Path) -> AsyncIterator[Route]:
    stack = BotStack(clean_redis, tmp_path, {"bots": {"b1": {
        "channel": "dingtalk", "app": "examples.support_bot:app", "client_id": "dingappkey",
        "client_secret": SECRET, "api_base": "http://127.0.0.1:1", "aes_key": AES,
        "token": "tk"}}})
    app = create_app(stack.settings, redis_url=clean_redis, listen=False)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://botcore") as c:
                yield Route(stack, app, c)
    finally:
        await stack.close()


async def test_two_messages_with_the_same_timestamp_are_both_queued(route: Route) -> None:
    ts = int(time.time() * 1000)
    first = signed_request(robot_message(msg_id="m1"), ts_ms=ts)
    second = signed_request(robot_message(msg_id="m2"), ts_ms=ts)
    assert first.headers == second.headers  # same ms: same sign
    assert (await route.post(first)).status_code == 200
    assert (await route.post(second)).status_code == 200
    assert await route.queued() == ["m1", "m2"]


async def test_identical_replay_is_answered_200_and_queued_once(route: Route) -> None:
    request = signed_request(robot_message(msg_id="m1"))
    answers = [(await route.post(request)).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    assert await route.queued() == ["m1"]


async def test_redelivery_after_a_failed_write_is_accepted(
        route: Route, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = route.app.state.ingress.inbox
    real_admit = inbox.admit
    failures = [IngressError("redis down")]

    async def flaky_admit(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await real_admit(*args, **kwargs)

    monkeypatch.setattr(inbox, "admit", flaky_admit)
    request = signed_request(robot_message(msg_id="m1"))
    assert (await route.post(request)).status_code == 503
    assert await route.queued() == []
    retry = await route.post(request)  # DingTalk (or a proxy) sends the same request again
    assert retry.status_code == 200
    assert await route.queued() == ["m1"]


@pytest.mark.parametrize(("headers", "ts_shift_ms", "status", "reason"), [
    ({"sign": "AAAA"}, 0, 401, "bad_signature"),
    ({}, -3_700_000, 401, "stale_timestamp"),  # older than DingTalk's 1 h
    ({}, +3_700_000, 401, "stale_timestamp"),  # from the future
    ({"timestamp": "soon"}, 0, 400, "bad_timestamp"),
])
async def test_refused_requests_queue_nothing(route: Route, headers: dict[str, str],
                                              ts_shift_ms: int, status: int,
                                              reason: str) -> None:
    ts = int(time.time() * 1000) + ts_shift_ms
    good = signed_request(robot_message(msg_id="bad1"), ts_ms=ts)
    request = WebhookRequest("POST", {**good.headers, **headers}, {}, good.body)
    response = await route.post(request)
    assert (response.status_code, response.json()) == (status, {"error": reason})
    assert await route.queued() == []
    assert await route.stack.redis.keys("*dedupe*") == []


async def test_wrong_secret_queues_nothing(route: Route) -> None:
    response = await route.post(signed_request(robot_message(), secret="not-the-secret"))
    assert response.status_code == 401
    assert await route.queued() == []


def encrypted(plain: dict[str, Any], ts_ms: int | None = None) -> WebhookRequest:
    crypto = CallbackCrypto("tk", AES, "dingappkey")
    ts, nonce = str(ts_ms or int(time.time() * 1000)), "n0nce"
    enc = crypto.encrypt(json.dumps(plain))
    query = {"msg_signature": crypto.signature(ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    return WebhookRequest("POST", {}, query, json.dumps({"encrypt": enc}).encode())


async def test_encrypted_callback_replay_and_redelivery(route: Route) -> None:
    request = encrypted(robot_message(msg_id="e1"))
    answers = [await route.post(request) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(json.loads(a.content)["encrypt"] for a in answers)  # encrypted "success"
    assert await route.queued() == ["e1"]


async def test_encrypted_callback_bad_signature_queues_nothing(route: Route) -> None:
    request = encrypted(robot_message(msg_id="e2"))
    forged = WebhookRequest("POST", {}, {**request.query, "msg_signature": "0" * 40},
                            request.body)
    stale = encrypted(robot_message(msg_id="e3"), ts_ms=int(time.time() * 1000) - 3_700_000)
    assert (await route.post(forged)).status_code == 401
    assert (await route.post(stale)).status_code == 401
    assert await route.queued() == []
