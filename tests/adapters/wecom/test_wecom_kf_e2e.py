"""End to end, 微信客服: kf callback → webhook route (a note in Redis) → the adapter's
``listen`` loop (kf/sync_msg at the fake) → ingress → real Celery worker → kf/send_msg."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fake_kf import OPEN_KFID, USER, FakeKf
from fake_wecom import AGENT_ID, SECRET
from wecom_testkit import VEC_AES, VEC_CORP, VEC_TOKEN, signed_post

from adapters.wecom import WXBizMsgCrypt
from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack, wait_until
from botcore.web.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture
def served_kf() -> Iterator[tuple[FakeKf, str]]:
    """The fake WeCom with kf endpoints as a real HTTP server in a daemon thread."""
    fake = FakeKf(corp_id=VEC_CORP)
    with serve_in_thread(fake.app) as base_url:
        yield fake, base_url


async def test_kf_message_gets_exactly_one_answer(
        clean_redis: str, tmp_path: Path, served_kf: tuple[FakeKf, str]) -> None:
    fake, base_url = served_kf
    stack = BotStack(clean_redis, tmp_path, {
        "bots": {"wc": {"channel": "wecom", "app": "examples.support_bot:app",
                        "corp_id": VEC_CORP, "agent_id": AGENT_ID, "secret": SECRET,
                        "token": VEC_TOKEN, "encoding_aes_key": VEC_AES, "kf": True,
                        "api_base": base_url}},
        "ingress": {"lease_ttl": 2.0, "sweep_interval": 0.2},
    })
    fake.add("kfmsg0001", text="退货怎么办")
    token = fake.callback_token()
    crypt = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
    now = int(time.time())
    xml = (f"<xml><ToUserName><![CDATA[{VEC_CORP}]]></ToUserName><CreateTime>{now}"
           f"</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[kf_msg_or_event]]>"
           f"</Event><Token><![CDATA[{token}]]></Token><OpenKfId><![CDATA[{OPEN_KFID}]]>"
           f"</OpenKfId></xml>")
    hook = signed_post(crypt, crypt.encrypt(xml), str(now))
    app = create_app(stack.settings, redis_url=clean_redis)
    try:
        stack.start_worker()
        async with app.router.lifespan_context(app):
            adapter = app.state.runtime.adapters["wc"]
            adapter.kf.block = 1
            loop = asyncio.create_task(adapter.listen(app.state.ingress.ingest))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://botcore") as client:
                for _ in range(2):  # a second note re-reads nothing new
                    response = await client.post("/webhooks/wecom/wc", params=dict(hook.query),
                                                 content=hook.body)
                    assert response.status_code == 200
                    assert response.text == ""

                async def replied() -> bool:
                    return len(fake.kf_sent) >= 1
                await wait_until(replied, timeout=30)
                await asyncio.sleep(0.5)  # a duplicate reply would arrive by now
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
    finally:
        await stack.close()
    (sent,) = fake.kf_sent
    assert sent["touser"] == USER
    assert sent["open_kfid"] == OPEN_KFID
    assert "7 天" in sent["text"]["content"]
    assert fake.sent == []
    assert len(fake.sync_calls) >= 1
    assert all(call["token"] == token for call in fake.sync_calls)
