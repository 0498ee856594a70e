"""Runs one flow turn as a worker would: GraphFlowRunner → IdempotentReplier → an adapter.

Shared by the citation tests of flows, the web chat and the OpenAI API.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from redis.asyncio import Redis

from botcore.app import BotApp
from botcore.channel import ChannelAdapter
from botcore.context import TurnContext
from botcore.flowrun import GraphFlowRunner
from botcore.ingress.replier import IdempotentReplier
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage
from botcore.retrieval import Passage
from botcore.sessions import Session
from botcore.sessions.memory import InMemorySessionStore
from botcore.settings import BotConfig, Settings

POLICY = Passage(text="签收后 7 天内可无理由退货。", score=0.9, source="policy.md",
                 title="退货政策", heading="退货", page=2, chunk_id="c1", kb="faq")
WEB_PAGE = Passage(text="Refunds take 3-5 working days.", score=0.8,
                   source="https://shop.example.com/help/refunds", chunk_id="c2", kb="faq")
#: What the answer's ``citations`` should be, as JSON (``None`` fields left out).
EXPECTED = [
    {"title": "退货政策", "source": "policy.md", "page": 2, "heading": "退货"},
    {"title": "https://shop.example.com/help/refunds",
     "source": "https://shop.example.com/help/refunds",
     "url": "https://shop.example.com/help/refunds"},
]


class StaticRetriever:
    """A :class:`botcore.retrieval.Retriever` with fixed passages."""

    def __init__(self, *passages: Passage) -> None:
        self.passages = list(passages)

    async def retrieve(self, query: str, *, k: int = 5) -> list[Passage]:
        return self.passages[:k]


def make_runner(redis: Redis, keys: KeyBuilder) -> GraphFlowRunner:
    """The worker's flow runner on real Redis (default settings, no ``[llm]``)."""
    runtime = SimpleNamespace(redis=redis, keys=keys, settings=Settings(), apps={})
    return GraphFlowRunner(runtime)  # type: ignore[arg-type]


def make_context(runner: GraphFlowRunner, app: BotApp, adapter: ChannelAdapter,
                 message: InboundMessage) -> TurnContext:
    """A worker's turn context replying through ``adapter`` (recorded, at most once)."""
    return TurnContext(
        message=message, session=Session(InMemorySessionStore(), message.conversation),
        bot=BotConfig(id=message.bot_id, channel="web", app="tests.x:app"), app=app,
        replier=IdempotentReplier(adapter, runner.runtime.redis, runner.runtime.keys),
        flows=runner)


async def run_turn(runner: GraphFlowRunner, app: BotApp, adapter: ChannelAdapter,
                   message: InboundMessage, flow: str, **options: Any) -> str:
    """Run flow ``flow`` for ``message``; returns the answer."""
    ctx = make_context(runner, app, adapter, message)
    return await runner.run(flow, ctx, options)
