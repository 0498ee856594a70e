"""End to end: encrypted WeCom callback → webhook route → Redis inbox → real Celery worker →
``message/send`` at the fake WeCom server (uvicorn on loopback)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_wecom import AGENT_ID, SECRET, FakeWeCom
from wecom_testkit import VEC_AES, VEC_CORP, VEC_TOKEN, app_xml, signed_post

from adapters.wecom import WXBizMsgCrypt
from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeWeCom, int]]:
    """The fake WeCom API as a real HTTP server in a daemon thread."""
    fake = FakeWeCom(corp_id=VEC_CORP)
    with serve_in_thread(fake.app) as base_url:
        yield fake, int(base_url.rsplit(":", 1)[1])


async def test_encrypted_callback_is_answered_through_message_send(
        clean_redis: str, tmp_path: Path, served_fake: tuple[FakeWeCom, int]) -> None:
    fake, port = served_fake
    stack = BotStack(clean_redis, tmp_path, {
        "bots": {"wc": {"channel": "wecom", "app": "examples.support_bot:app",
                        "corp_id": VEC_CORP, "agent_id": AGENT_ID, "secret": SECRET,
                        "token": VEC_TOKEN, "encoding_aes_key": VEC_AES,
                        "api_base": f"http://127.0.0.1:{port}"}},
        "ingress": {"lease_ttl": 2.0, "sweep_interval": 0.2},
    })
    crypt = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
    now = int(time.time())
    xml = app_xml("text", "<Content><![CDATA[退货怎么办]]></Content>", user="lisi", ts=now,
                  msg_id="7000000000000000001", agent=AGENT_ID)
    hook = signed_post(crypt, crypt.encrypt(xml), str(now))
    try:
        stack.start_worker()
        async with stack.client() as client:
            for _ in range(2):  # WeCom's retry of the same delivery is answered once
                response = await client.post("/webhooks/wecom/wc", params=dict(hook.query),
                                             content=hook.body)
                assert response.status_code == 200
                assert response.text == ""
            forged = await client.post("/webhooks/wecom/wc", content=hook.body, params={
                **hook.query, "msg_signature": "0" * 40})
            assert forged.status_code == 401

            async def replied() -> bool:
                return len(fake.sent) >= 1
            await wait_until(replied, timeout=30)
            await asyncio.sleep(0.5)  # a duplicate reply would arrive by now
    finally:
        await stack.close()
    (sent,) = fake.sent
    assert sent["touser"] == "lisi"
    assert sent["agentid"] == AGENT_ID
    assert "7 天" in sent[sent["msgtype"]]["content"]
    assert fake.gettoken_calls == 1
