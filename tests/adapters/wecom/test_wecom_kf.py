"""WeChat Customer Service (微信客服): callback notes, the sync_msg loop, kf replies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fake_kf import OPEN_KFID, USER, FakeKf
from redis.asyncio import Redis
from wecom_testkit import VEC_AES, VEC_CORP, VEC_TOKEN, aibot_options, app_options, bot, signed_post

from adapters.wecom import WeComAdapter, WXBizMsgCrypt
from botcore.channel import Accepted, AdapterDeps, Rejected
from botcore.errors import ConfigError
from botcore.ingress.inbox import Inbox
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage, OutboundMessage
from botcore.web.routes import Ingress

NOW = 1409659813


@pytest.fixture
def kf_fake() -> FakeKf:
    """The fake WeCom with kf endpoints, two items per sync page."""
    return FakeKf(corp_id=VEC_CORP, page_size=2)


@pytest.fixture
async def kf_adapter(kf_fake: FakeKf, redis: Redis,
                     keys: KeyBuilder) -> AsyncIterator[WeComAdapter]:
    """An app-mode bot with ``kf = true`` talking to the fake."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=kf_fake.app)) as http:
        adapter = WeComAdapter(bot(app_options(kf=True)), AdapterDeps(redis, http, keys))
        adapter.clock = lambda: float(NOW)
        assert adapter.kf is not None
        adapter.kf.block = 1
        yield adapter


def kf_callback(token: str, open_kfid: str = OPEN_KFID) -> str:
    """The decrypted kf callback of document 94670."""
    return (f"<xml><ToUserName><![CDATA[{VEC_CORP}]]></ToUserName>"
            f"<CreateTime>{NOW}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[kf_msg_or_event]]></Event><Token><![CDATA[{token}]]></Token>"
            f"<OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>")


async def notes(redis: Redis, adapter: WeComAdapter) -> list[dict[str, Any]]:
    assert adapter.kf is not None
    return [json.loads(raw) for raw in await redis.lrange(adapter.kf.notify_key, 0, -1)]


async def run_listen(adapter: WeComAdapter, ingest: Callable[[InboundMessage], Awaitable[bool]],
                     until: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Run ``listen`` until ``await until()`` holds (then cancel it) or it raises."""
    task = asyncio.create_task(adapter.listen(ingest))
    try:
        for _ in range(int(timeout / 0.02)):
            if task.done() or await until():
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def test_callback_only_notes_a_sync(kf_adapter: WeComAdapter, kf_fake: FakeKf,
                                          redis: Redis) -> None:
    crypt = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
    outcome = await kf_adapter.handle_webhook(
        signed_post(crypt, crypt.encrypt(kf_callback("TOK1")), str(NOW)))
    assert isinstance(outcome, Accepted)
    assert outcome.messages == ()
    assert outcome.ack_body == ""
    assert await notes(redis, kf_adapter) == [{"open_kfid": OPEN_KFID, "token": "TOK1"}]
    assert kf_fake.sync_calls == []
    assert kf_fake.gettoken_calls == 0


async def test_bad_signature_is_rejected_and_notes_nothing(kf_adapter: WeComAdapter,
                                                           redis: Redis) -> None:
    crypt = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
    request = signed_post(crypt, crypt.encrypt(kf_callback("TOK1")), str(NOW))
    forged = request.__class__(method="POST", headers={}, body=request.body,
                               query={**request.query, "msg_signature": "0" * 40})
    outcome = await kf_adapter.handle_webhook(forged)
    assert isinstance(outcome, Rejected)
    assert outcome.status == 401
    assert await notes(redis, kf_adapter) == []


async def test_listen_pages_and_ingests_only_user_messages(
        kf_adapter: WeComAdapter, kf_fake: FakeKf, redis: Redis) -> None:
    kf_fake.add("m1", text="退货怎么办")
    kf_fake.add("m2", text="agent says hi", origin=5)
    kf_fake.add_event("e1", "session_status_change", change_type=1)
    kf_fake.add("m3", text="还在吗")
    kf_fake.add("m4", text="谢谢")
    assert kf_adapter.kf is not None
    await kf_adapter.kf.notify(OPEN_KFID, kf_fake.callback_token())
    got: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        got.append(message)
        return True
    kf = kf_adapter.kf

    async def done() -> bool:
        return await kf.cursor(OPEN_KFID) == "c5" and not await redis.llen(kf.working_key)
    await run_listen(kf_adapter, ingest, done)
    assert [m.text for m in got] == ["退货怎么办", "还在吗", "谢谢"]
    first = got[0]
    assert first.event_id == f"kf:{OPEN_KFID}:m1"
    assert first.conversation.chat_id == f"kf:{OPEN_KFID}:{USER}"
    assert first.platform == {"mode": "kf", "open_kfid": OPEN_KFID, "external_userid": USER}
    assert [c.get("cursor") for c in kf_fake.sync_calls] == [None, "c2", "c4"]
    assert all(c["open_kfid"] == OPEN_KFID and c["token"] for c in kf_fake.sync_calls)
    assert await kf_adapter.kf.cursor(OPEN_KFID) == "c5"
    assert await redis.llen(kf_adapter.kf.working_key) == 0


async def test_cursor_is_stored_only_after_ingest_and_a_crash_rereads(
        kf_adapter: WeComAdapter, kf_fake: FakeKf, redis: Redis, keys: KeyBuilder) -> None:
    for n in range(1, 4):
        kf_fake.add(f"m{n}", text=f"q{n}")
    assert kf_adapter.kf is not None
    await kf_adapter.kf.notify(OPEN_KFID, kf_fake.callback_token())

    class Enqueuer:
        def __init__(self) -> None:
            self.scheduled: list[str] = []

        async def schedule(self, conversation_id: str) -> None:
            self.scheduled.append(conversation_id)
    enqueuer = Enqueuer()
    ingress = Ingress(Inbox(redis, keys), enqueuer)  # type: ignore[arg-type]
    admitted: list[tuple[str, bool]] = []

    async def crashing(message: InboundMessage) -> bool:
        new = await ingress.ingest(message)
        admitted.append((message.message_id or "", new))
        if message.message_id == "m2":
            raise RuntimeError("process died after ingest, before the cursor was stored")
        return new
    async def never() -> bool:
        return False
    with pytest.raises(RuntimeError):
        await run_listen(kf_adapter, crashing, never)
    assert await kf_adapter.kf.cursor(OPEN_KFID) is None  # the page was not finished
    assert await redis.llen(kf_adapter.kf.working_key) == 1  # the note is kept

    async def ingest(message: InboundMessage) -> bool:
        new = await ingress.ingest(message)
        admitted.append((message.message_id or "", new))
        return new
    kf = kf_adapter.kf

    async def done() -> bool:
        return await kf.cursor(OPEN_KFID) == "c3"
    await run_listen(kf_adapter, ingest, done)
    assert admitted == [("m1", True), ("m2", True),  # first run
                        ("m1", False), ("m2", False), ("m3", True)]  # re-read: repeats dropped
    assert enqueuer.scheduled
    assert all(c.endswith(f"kf:{OPEN_KFID}:{USER}") for c in enqueuer.scheduled)


async def test_send_to_a_kf_conversation_uses_kf_send_msg(
        kf_adapter: WeComAdapter, kf_fake: FakeKf) -> None:
    kf_fake.add("m1", text="退货怎么办")
    message = (await _sync_one(kf_adapter, kf_fake))[0]
    reply = OutboundMessage(conversation=message.conversation, text="一" * 700 + "。" + "二" * 10,
                            context=message.platform, idempotency_key="turn-1")
    result = await kf_adapter.send(reply)
    assert result.parts == 2
    assert [s["touser"] for s in kf_fake.kf_sent] == [USER, USER]
    assert {s["open_kfid"] for s in kf_fake.kf_sent} == {OPEN_KFID}
    assert kf_fake.kf_sent[0]["text"]["content"] == "一" * 682  # 2046 bytes: ≤ 2048
    assert all(len(s["msgid"]) <= 32 for s in kf_fake.kf_sent)
    assert kf_fake.sent == []  # not message/send
    await kf_adapter.send(reply)  # a re-run of the turn sends nothing twice
    assert len(kf_fake.kf_sent) == 2


async def test_enter_session_becomes_enter_chat_and_a_reply_is_the_welcome(
        kf_adapter: WeComAdapter, kf_fake: FakeKf) -> None:
    kf_fake.add_event("e1", "enter_session", scene="123", scene_param="a=1",
                      welcome_code="WELCOME1")
    kf_fake.add_event("e2", "msg_send_fail", fail_msgid="x", fail_type=4)
    (event,) = await _sync_one(kf_adapter, kf_fake)
    assert event.kind == "event"
    assert event.event_type == "enter_chat"
    assert event.event_data["native"] == "enter_session"
    assert event.event_data["welcome_code"] == "WELCOME1"
    await kf_adapter.send(OutboundMessage(conversation=event.conversation, text="您好！",
                                          context=event.platform, idempotency_key="w-1"))
    assert [s["code"] for s in kf_fake.event_sent] == ["WELCOME1"]
    assert kf_fake.event_sent[0]["text"] == {"content": "您好！"}
    assert kf_fake.kf_sent == []


async def _sync_one(adapter: WeComAdapter, fake: FakeKf) -> list[InboundMessage]:
    got: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        got.append(message)
        return True
    assert adapter.kf is not None
    await adapter.kf.sync(OPEN_KFID, fake.callback_token(), ingest)
    return got


async def test_expired_callback_token_falls_back_to_a_tokenless_read(
        kf_adapter: WeComAdapter, kf_fake: FakeKf) -> None:
    kf_fake.add("m1", text="hi")
    got: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        got.append(message)
        return True
    assert kf_adapter.kf is not None
    assert await kf_adapter.kf.sync(OPEN_KFID, "EXPIRED", ingest) == 1
    assert ["token" in c for c in kf_fake.sync_calls] == [True, False]


async def test_kf_needs_app_mode_and_listen_needs_kf(deps: AdapterDeps) -> None:
    with pytest.raises(ConfigError) as info:
        WeComAdapter(bot(aibot_options(kf=True)), deps)
    assert info.value.key == "bots.wc.kf"
    plain = WeComAdapter(bot(app_options()), deps)
    assert plain.kf is None
    with pytest.raises(ConfigError):
        await plain.listen(lambda m: asyncio.sleep(0, True))
