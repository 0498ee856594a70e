"""Satisfaction after a handoff, end to end through the flow runner: the release asks once,
a 1-5 reply is stored in Redis (``KeyBuilder.feedback``) and outlives the graph's run."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fastapi import FastAPI

from botcore.handoff import SURVEY_TEXT, handoff_router
from botcore.testing import RecordingAdapter
from flows.customer_service import THANKS
from tests.flows.conftest import FakeRetriever, fake_model, passage

CS = "flows.customer_service:build_cs_graph"
KB = {"retriever": FakeRetriever([passage("满 99 元包邮。", source="ship.md")])}
AUTH = {"authorization": "Bearer k"}


async def _release(h: Any, adapter: RecordingAdapter) -> dict[str, Any]:
    runtime = h.runner.runtime
    runtime.adapter_for = lambda bot_id, channel: adapter
    web = FastAPI()
    web.state.runtime = runtime
    web.include_router(handoff_router("k"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web),
                                 base_url="http://t") as client:
        first = (await client.post("/handoff/bot/web:bot:c1/release", headers=AUTH)).json()
        again = (await client.post("/handoff/bot/web:bot:c1/release", headers=AUTH)).json()
    assert again == {"released": False, "survey_sent": False}  # asked once
    return dict(first)


async def _ratings(redis: Any) -> list[dict[str, Any]]:
    return [json.loads(await redis.get(key)) async for key in redis.scan_iter("t:feedback:*")]


async def test_release_asks_and_the_rating_is_stored(harness: Any, redis: Any) -> None:
    h = harness(fake_model())
    await h.turn("转人工", CS, **KB)
    adapter = RecordingAdapter()
    assert await _release(h, adapter) == {"released": True, "survey_sent": True}
    assert adapter.texts == [SURVEY_TEXT]
    assert await h.turn("4", CS, **KB) == THANKS
    assert [(r["rating"], r["kind"], r["conversation_id"]) for r in await _ratings(redis)] == [
        (4, "handoff", "web:bot:c1")]
    assert await h.runner.desk.status("web:bot:c1") is None  # the run is over, rating kept


async def test_other_reply_after_release_is_answered_and_not_a_rating(
        harness: Any, redis: Any) -> None:
    h = harness(fake_model("faq", "满 99 包邮 [1]"))
    await h.turn("人工客服", CS, **KB)
    await _release(h, RecordingAdapter())
    assert (await h.turn("运费多少", CS, **KB)).startswith("满 99 包邮")
    assert await _ratings(redis) == []


async def test_satisfaction_off_asks_nothing_and_stores_nothing(
        harness: Any, redis: Any) -> None:
    h = harness(fake_model("smalltalk", "好的"))
    await h.turn("转人工", CS, satisfaction=False, **KB)
    adapter = RecordingAdapter()
    assert await _release(h, adapter) == {"released": True, "survey_sent": False}
    assert adapter.texts == []
    assert await h.turn("5", CS, satisfaction=False, **KB) == "好的"
    assert await _ratings(redis) == []
