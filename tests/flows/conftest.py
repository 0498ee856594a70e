"""Fakes for flow tests: a scripted tool-calling chat model and a one-turn harness."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field
from redis.asyncio import Redis

from botcore.app import BotApp
from botcore.context import TurnContext
from botcore.flowrun import GraphFlowRunner
from botcore.keys import KeyBuilder
from botcore.message import OutboundMessage, SendResult
from botcore.retrieval import Passage
from botcore.sessions import HistoryEntry, Session
from botcore.sessions.memory import InMemorySessionStore
from botcore.settings import BotConfig, Settings
from botcore.testing import make_inbound


class FakeToolModel(BaseChatModel):
    """Answers from a script, one AIMessage (or exception) per call; streams word by word.

    Records the messages of every call in ``calls``; ``bind_tools`` records tool names.
    """

    script: list[Any]
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "fake-tool-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound.append([t.name for t in tools])
        return self

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        self.calls.append(list(messages))
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item if isinstance(item, AIMessage) else AIMessage(item)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Any:
        message = self._next(messages)
        words = str(message.content).split(" ")
        chunks = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": n}
                  for n, c in enumerate(message.tool_calls)]
        chunks += [{"name": c["name"], "args": c["args"], "id": c["id"], "index": 90 + n}
                   for n, c in enumerate(message.invalid_tool_calls)]
        for i, word in enumerate(words):
            last = i == len(words) - 1
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=word + ("" if last else " "),
                tool_call_chunks=chunks if last else [],  # type: ignore[arg-type]
                usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
                if last else None))


def fake_model(*script: Any) -> FakeToolModel:
    """A scripted model (fresh call records)."""
    return FakeToolModel(script=list(script), calls=[], bound=[])


def call(name: str, **args: Any) -> AIMessage:
    """An AIMessage asking for one tool call."""
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": f"call-{name}"}])


class FakeRetriever:
    """Returns fixed passages; records queries."""

    def __init__(self, passages: Iterable[Passage]) -> None:
        self.passages = list(passages)
        self.queries: list[str] = []

    async def retrieve(self, query: str, *, k: int = 5) -> list[Passage]:
        self.queries.append(query)
        return self.passages[:k]


def passage(text: str, source: str = "faq.md", score: float = 0.9) -> Passage:
    """A passage with a citation."""
    return Passage(text=text, score=score, source=source, heading="退货", chunk_id="c1",
                   kb="faq")


class _Stream:
    def __init__(self, replier: FakeReplier) -> None:
        self.replier = replier

    async def update(self, text: str) -> None:
        self.replier.updates.append(text)

    async def finish(self, text: str) -> SendResult:
        self.replier.sent.append(text)
        return SendResult(message_id="s")


@dataclass
class FakeReplier:
    """Records stream updates and final texts."""

    updates: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message.text)
        return SendResult(message_id="m")

    async def open_stream(self, message: OutboundMessage) -> _Stream:
        return _Stream(self)


@dataclass
class Harness:
    """Runs turns of one flow for one conversation through the real GraphFlowRunner."""

    runner: GraphFlowRunner
    app: BotApp
    store: InMemorySessionStore
    replier: FakeReplier
    bot: BotConfig = field(
        default_factory=lambda: BotConfig(id="bot", channel="web", app="tests.x:app"))

    async def turn(self, text: str, flow: str, *, as_sender: str = "user-1",
                   chat_type: str = "private", **options: Any) -> str:
        message = make_inbound(text, bot_id="bot", chat_id="c1", sender=as_sender,
                               chat_type=chat_type, mentioned=True)  # type: ignore[arg-type]
        ctx = TurnContext(message=message, session=Session(self.store, message.conversation),
                          bot=self.bot,
                          app=self.app, replier=self.replier, flows=self.runner)
        answer = await self.runner.run(flow, ctx, options)
        entries = [HistoryEntry(role="user", content=text)]
        entries += [HistoryEntry(role="assistant", content=t) for t in ctx.replies if t]
        await ctx.session.append(*entries)
        return answer


@pytest.fixture
def harness(redis: Redis) -> Callable[..., Harness]:
    """``harness(model, app=None)``: a runner on real Redis with the app's model."""
    def make(model: BaseChatModel | None = None, app: BotApp | None = None) -> Harness:
        bot_app = app or BotApp("t")
        bot_app.chat_model = model
        runtime = SimpleNamespace(redis=redis, keys=KeyBuilder(prefix="t"),
                                  settings=Settings(), apps={"bot": bot_app})
        return Harness(GraphFlowRunner(runtime), bot_app,  # type: ignore[arg-type]
                       InMemorySessionStore(), FakeReplier())
    return make
