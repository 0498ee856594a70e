"""Customer-service flow: every intent, handoff pause/relay/release, satisfaction, agent routes."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from botcore.app import BotApp
from botcore.handoff import HandoffDesk, handoff_router
from botcore.message import ConversationKey
from botcore.sessions.redis import RedisSessionStore
from botcore.testing import RecordingAdapter
from flows.customer_service import HANDOFF_TEXT, THANKS
from tests.flows.conftest import FakeRetriever, call, fake_model, passage

CS = "flows.customer_service:build_cs_graph"
KB = {"retriever": FakeRetriever([passage("满 99 元包邮。", source="ship.md")])}


async def test_faq_goes_through_rag(harness: Any) -> None:
    model = fake_model("faq", "满 99 包邮 [1]")
    h = harness(model)
    answer = await h.turn("运费多少", CS, **KB)
    assert answer.startswith("满 99 包邮 [1]")
    assert "ship.md" in answer
    assert h.replier.updates[0] == "满 "  # the silent classification never streams


async def test_smalltalk(harness: Any) -> None:
    h = harness(fake_model("smalltalk", "你好呀！"))
    assert await h.turn("你好", CS, **KB) == "你好呀！"


async def test_lookup_uses_tools(harness: Any) -> None:
    app = BotApp("t")

    @app.tool
    async def order_status(order_id: str) -> str:
        """Look up an order."""
        return "shipped"

    model = fake_model("lookup", call("order_status", order_id="9"), "9 已发货")
    h = harness(model, app)
    assert await h.turn("订单 9 到哪了", CS, **KB) == "9 已发货"


async def test_no_model_answers_from_the_knowledge_base(harness: Any) -> None:
    h = harness(None)
    assert "满 99 元包邮。" in await h.turn("运费", CS, **KB)


async def test_handoff_pauses_relays_and_resumes_after_release(harness: Any) -> None:
    model = fake_model("faq", "满 99 包邮 [1]")
    h = harness(model)
    assert await h.turn("我要转人工", CS, **KB) == HANDOFF_TEXT
    desk = h.runner.desk
    conv = "web:bot:c1"
    assert await desk.status(conv) == "open"
    assert await h.turn("还在吗？", CS, **KB) == ""  # stored for the agent, not answered
    assert h.replier.sent == [HANDOFF_TEXT]
    assert [e["text"] for e in await desk.transcript(conv)] == ["我要转人工", "还在吗？"]
    assert model.calls == []
    assert await desk.release(conv)
    assert (await h.turn("运费多少", CS, **KB)).startswith("满 99 包邮")
    assert await desk.status(conv) is None


async def test_rating_after_release_is_the_satisfaction_answer(harness: Any) -> None:
    h = harness(fake_model())
    await h.turn("转人工", CS, **KB)
    await h.runner.desk.release("web:bot:c1")
    assert await h.turn("5", CS, **KB) == THANKS


async def test_agent_routes_answer_through_the_channel(harness: Any) -> None:
    h = harness(fake_model())
    await h.turn("human please", CS, **KB)
    adapter = RecordingAdapter()
    runtime = h.runner.runtime
    runtime.adapter_for = lambda bot_id, channel: adapter
    web = FastAPI()
    web.state.runtime = runtime
    web.include_router(handoff_router("s3cret"))
    auth = {"authorization": "Bearer s3cret"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web),
                                 base_url="http://t") as client:
        assert (await client.get("/handoff/bot", headers={"authorization": "Bearer x"})
                ).status_code == 403
        assert (await client.get("/handoff/bot", headers=auth)).json()["conversations"] == [
            "web:bot:c1"]
        sent = await client.post("/handoff/bot/web:bot:c1/reply", json={"text": "我是小王"},
                                 headers=auth)
        assert sent.status_code == 200
        assert adapter.texts == ["我是小王"]
        history = await RedisSessionStore.from_settings(
            runtime.redis, runtime.keys, runtime.settings.sessions).history(
            ConversationKey(channel="web", bot_id="bot", chat_id="c1"))
        last = history[-1]   # the bot will know what the agent said once it is back
        assert (last.role, last.content, last.name) == ("assistant", "我是小王", "human_agent")
        shown = (await client.get("/handoff/bot/web:bot:c1", headers=auth)).json()
        assert [e["role"] for e in shown["transcript"]] == ["user", "agent"]
        assert (await client.post("/handoff/bot/web:bot:c1/release", headers=auth)
                ).json() == {"released": True, "survey_sent": True}
        again = await client.post("/handoff/bot/web:bot:c1/reply", json={"text": "x"},
                                  headers=auth)
        assert again.status_code == 409
    assert await HandoffDesk(runtime.redis, runtime.keys).status("web:bot:c1") == "released"
