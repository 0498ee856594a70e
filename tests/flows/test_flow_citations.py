"""Citations end to end in the worker: a RAG turn's sources reach the web chat's final event.

The real GraphFlowRunner, the real IdempotentReplier and WebChatAdapter on real Redis; only
the model (scripted) and the retriever (a Retriever with fixed passages) are stand-ins.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from langchain_core.messages import AIMessage
from redis.asyncio import Redis

from botcore.app import BotApp
from botcore.channel import AdapterDeps
from botcore.keys import KeyBuilder
from botcore.message import Citation
from botcore.settings import BotConfig
from botcore.testing import make_inbound
from botcore.webchat import WebChatAdapter
from tests.flows.citation_turn import (
    EXPECTED,
    POLICY,
    WEB_PAGE,
    StaticRetriever,
    make_context,
    make_runner,
    run_turn,
)
from tests.flows.conftest import fake_model


@pytest.fixture
async def web(redis: Redis, keys: KeyBuilder) -> AsyncIterator[WebChatAdapter]:
    async with httpx.AsyncClient() as http:
        bot = BotConfig(id="bot", channel="web", app="tests.x:app")
        yield WebChatAdapter(bot, AdapterDeps(redis=redis, http=http, keys=keys))


async def events(web: WebChatAdapter, redis: Redis, chat_id: str = "c1") -> list[dict[str, Any]]:
    """The conversation's reply stream, decoded."""
    conv = make_inbound(chat_id=chat_id).conversation
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                   await redis.xrange(web.outbox_key(conv)))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in entries]


def message_events(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in found if e["type"] == "message"]


async def test_rag_answer_streams_with_its_passages_cited(
        web: WebChatAdapter, redis: Redis, keys: KeyBuilder) -> None:
    model = fake_model("7 天内可以退货 [1]，退款 3-5 个工作日 [2]")
    answer = await run_turn(make_runner(redis, keys), BotApp("t", chat_model=model), web,
                            make_inbound("能退货吗", chat_id="c1"), "rag",
                            retriever=StaticRetriever(POLICY, WEB_PAGE))
    [final] = message_events(await events(web, redis))
    assert final["text"] == answer
    assert final["stream_id"]  # the answer was streamed, then finished with its sources
    assert json.loads(final["citations"]) == EXPECTED
    assert "[1] policy.md › 退货, p. 2" in answer  # the text still lists them too


async def test_retrieval_only_answer_is_cited(web: WebChatAdapter, redis: Redis,
                                              keys: KeyBuilder) -> None:
    await run_turn(make_runner(redis, keys), BotApp("t"), web,
                   make_inbound("能退货吗", chat_id="c1"), "rag",
                   retriever=StaticRetriever(POLICY))
    [final] = message_events(await events(web, redis))
    assert json.loads(final["citations"]) == EXPECTED[:1]


async def test_dont_know_and_apology_cite_nothing(web: WebChatAdapter, redis: Redis,
                                                  keys: KeyBuilder) -> None:
    runner = make_runner(redis, keys)
    await run_turn(runner, BotApp("t", chat_model=fake_model()), web,
                   make_inbound("火星快递？", chat_id="c1"), "rag",
                   retriever=StaticRetriever(POLICY), min_score=0.95, dont_know="不知道")
    failing = BotApp("t", chat_model=fake_model(RuntimeError("provider 500")),
                     apology="Sorry, try later.")
    await run_turn(runner, failing, web, make_inbound("能退货吗", chat_id="c2"), "rag",
                   retriever=StaticRetriever(POLICY))
    [unknown] = message_events(await events(web, redis, "c1"))
    [apology] = message_events(await events(web, redis, "c2"))
    assert unknown["text"] == "不知道"
    assert apology["text"] == "Sorry, try later."
    assert "citations" not in unknown
    assert "citations" not in apology


async def test_customer_service_faq_answer_is_cited(web: WebChatAdapter, redis: Redis,
                                                    keys: KeyBuilder) -> None:
    model = fake_model("faq", "7 天内可以退货 [1]")
    await run_turn(make_runner(redis, keys), BotApp("t", chat_model=model), web,
                   make_inbound("能退货吗", chat_id="c1"), "customer_service",
                   retriever=StaticRetriever(POLICY))
    [final] = message_events(await events(web, redis))
    assert final["text"].startswith("7 天内可以退货 [1]")
    assert json.loads(final["citations"]) == EXPECTED[:1]


async def test_customer_service_smalltalk_cites_nothing(web: WebChatAdapter, redis: Redis,
                                                        keys: KeyBuilder) -> None:
    model = fake_model("smalltalk", AIMessage("你好！"))
    await run_turn(make_runner(redis, keys), BotApp("t", chat_model=model), web,
                   make_inbound("你好", chat_id="c1"), "customer_service",
                   retriever=StaticRetriever(POLICY))
    [final] = message_events(await events(web, redis))
    assert final["text"] == "你好！"
    assert "citations" not in final


async def test_reply_and_stream_carry_citations(web: WebChatAdapter, redis: Redis,
                                                keys: KeyBuilder) -> None:
    cite = Citation(title="FAQ", source="faq.md", url="https://example.com/faq")
    ctx = make_context(make_runner(redis, keys), BotApp("t"), web,
                       make_inbound("hi", chat_id="c1"))
    await ctx.reply("see the FAQ", citations=[cite])
    async with await ctx.stream(citations=[cite]) as out:
        await out.write("streamed")
    assert out.citations == (cite,)
    sent, streamed = message_events(await events(web, redis))
    for event in (sent, streamed):
        assert json.loads(event["citations"]) == [
            {"title": "FAQ", "source": "faq.md", "url": "https://example.com/faq"}]
    assert ctx.replies == ["see the FAQ", "streamed"]
