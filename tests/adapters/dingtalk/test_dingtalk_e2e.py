"""End to end: signed DingTalk callback -> webhook route -> Redis inbox -> real Celery worker
-> DingTalkAdapter.send -> the fake DingTalk (uvicorn on loopback) receives the answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dingtalk_support import robot_message, signed_request
from fake_dingtalk import FakeDingTalk

from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeDingTalk, str]]:
    fake = FakeDingTalk()
    with serve_in_thread(fake.asgi()) as base_url:
        yield fake, base_url


async def test_callback_in_answer_out(clean_redis: str, tmp_path: Path,
                                      served_fake: tuple[FakeDingTalk, str]) -> None:
    fake, base = served_fake
    stack = BotStack(clean_redis, tmp_path, {
        "bots": {"b1": {"channel": "dingtalk", "app": "examples.support_bot:app",
                        "client_id": fake.app_key, "client_secret": fake.app_secret,
                        "api_base": base}},
        "ingress": {"lease_ttl": 2.0, "sweep_interval": 0.2},
    })
    try:
        stack.start_worker()
        message = robot_message(group=False, text={"content": "退货怎么办"},
                                webhook=f"{base}/robot/sendBySession?session=e2e")
        request = signed_request(message, secret=fake.app_secret)
        async with stack.client() as client:
            response = await client.post("/webhooks/dingtalk/b1", content=request.body,
                                         headers=dict(request.headers))
            assert response.status_code == 200
            replayed = await client.post("/webhooks/dingtalk/b1", content=request.body,
                                         headers=dict(request.headers))
            assert replayed.status_code == 200  # acknowledged, dropped by ingress dedupe

            async def answered() -> bool:
                return bool(fake.bodies("/robot/sendBySession"))

            await wait_until(answered, timeout=20)
        await asyncio.sleep(0.5)  # a duplicate answer would show up by now
        (reply,) = fake.bodies("/robot/sendBySession")
        assert "7 天" in json.dumps(reply, ensure_ascii=False)
    finally:
        await stack.close()
