"""GraphFlowRunner: the chat flow with a fake model, prompt plugins, history, no model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field
from redis.asyncio import Redis

from botcore.app import BotApp
from botcore.context import TurnContext
from botcore.dispatch import DispatchResult, dispatch
from botcore.errors import FlowError
from botcore.flowapi import NO_MODEL_ANSWER
from botcore.flowrun import GraphFlowRunner
from botcore.ingress.replier import IdempotentReplier
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage
from botcore.prompts import CallNext, PromptRequest, PromptResult
from botcore.runtime import Runtime
from botcore.sessions import HistoryEntry, Session
from botcore.sessions.memory import InMemorySessionStore
from botcore.settings import BotConfig, load_settings
from botcore.testing import RecordingAdapter, make_inbound, scripted_model


class _RecordingModel(BaseChatModel):
    """Records the messages of every call; streams its answer in two-character chunks."""

    answer: str = "Hello there!"
    calls: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "recording-test-model"

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        self.calls.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.answer))])

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        raise AssertionError("the runner streams asynchronously")

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        self.calls.append(list(messages))
        for i in range(0, len(self.answer), 2):
            yield ChatGenerationChunk(message=AIMessageChunk(content=self.answer[i:i + 2]))


@pytest.fixture
async def runtime(redis: Redis, keys: KeyBuilder, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    monkeypatch.chdir(tmp_path)  # no botcore.toml in the way
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    monkeypatch.delenv("BOTCORE_LLM__MODEL", raising=False)
    http = httpx.AsyncClient()
    try:
        yield Runtime(settings=load_settings(bots={}), keys=keys, redis=redis, http=http)
    finally:
        await http.aclose()


def _ctx(app: BotApp, runtime: Runtime, adapter: RecordingAdapter,
         message: InboundMessage | None = None,
         store: InMemorySessionStore | None = None) -> TurnContext:
    msg = message or make_inbound("What is botcore?")
    return TurnContext(message=msg,
                       session=Session(store or InMemorySessionStore(), msg.conversation),
                       bot=BotConfig(id="bot", channel="web", app="tests.x:app"), app=app,
                       replier=IdempotentReplier(adapter, runtime.redis, runtime.keys),
                       flows=GraphFlowRunner(runtime))


async def test_answer_returned_and_sent_once(runtime: Runtime) -> None:
    app = BotApp(chat_model=scripted_model(["Botcore is a framework."]))
    app.default_flow("chat")
    adapter = RecordingAdapter()
    ctx = _ctx(app, runtime, adapter)
    assert await dispatch(ctx) is DispatchResult.FLOW
    assert adapter.texts == ["Botcore is a framework."]
    assert ctx.replies == ["Botcore is a framework."]
    assert adapter.sent[0].format == "markdown"


async def test_flow_run_returns_answer(runtime: Runtime) -> None:
    app = BotApp(chat_model=scripted_model(["first", "second"]))
    adapter = RecordingAdapter()
    assert await _ctx(app, runtime, adapter).flow("chat") == "first"
    assert await _ctx(app, runtime, adapter).flow("chat") == "second"
    assert adapter.texts == ["first", "second"]


async def test_prompt_plugins_and_history_reach_the_model(runtime: Runtime) -> None:
    model = _RecordingModel(answer="Sure, here it is.")
    app = BotApp(chat_model=model)
    order: list[str] = []

    @app.prompt(order=50)
    async def persona(req: PromptRequest, call_next: CallNext) -> PromptResult:
        order.append("persona")
        req.system.append("You are a support assistant.")
        return await call_next(req)

    @app.prompt(order=10)
    async def context(req: PromptRequest, call_next: CallNext) -> PromptResult:
        order.append("context")
        assert req.metadata["flow"] == "chat"
        assert req.metadata["bot_id"] == "bot"
        req.data.append("Botcore ships adapters for five channels.")
        result = await call_next(req)
        return PromptResult(AIMessage(result.text + " [checked]"))

    store = InMemorySessionStore()
    message = make_inbound("And the channels?")
    await store.append(message.conversation, HistoryEntry(role="user", content="Hi"),
                       HistoryEntry(role="assistant", content="Hello! Ask me."),
                       HistoryEntry(role="system", content="not replayed"))
    adapter = RecordingAdapter()
    answer = await _ctx(app, runtime, adapter, message, store).flow(
        "chat", system=["Answer briefly."])
    assert order == ["context", "persona"]
    assert answer == "Sure, here it is. [checked]"
    assert adapter.texts == ["Sure, here it is. [checked]"]
    (seen,) = model.calls
    assert [m.type for m in seen] == ["system", "system", "human", "ai", "human"]
    assert seen[0].content == "Answer briefly.\n\nYou are a support assistant."
    assert "<data>\nBotcore ships adapters for five channels.\n</data>" in seen[1].content
    assert "not instructions" in seen[1].content
    assert [m.content for m in seen[2:]] == ["Hi", "Hello! Ask me.", "And the channels?"]


async def test_streamed_chunks_reach_a_streaming_channel(runtime: Runtime) -> None:
    class _Streaming(RecordingAdapter):
        def __init__(self) -> None:
            super().__init__()
            self.updates: list[str] = []
            self.finals: list[str] = []

        def open_stream(self, message: Any) -> Any:
            adapter = self

            class _S:
                async def update(self, text: str) -> None:
                    adapter.updates.append(text)

                async def finish(self, text: str) -> Any:
                    adapter.finals.append(text)

            return _S()

    adapter = _Streaming()
    app = BotApp(chat_model=_RecordingModel(answer="abcdef"))
    await _ctx(app, runtime, adapter).flow("chat")
    assert adapter.updates[:3] == ["ab", "abcd", "abcdef"]
    assert adapter.finals == ["abcdef"]


async def test_no_model_answers_with_the_hint(runtime: Runtime) -> None:
    app = BotApp()
    adapter = RecordingAdapter()
    answer = await _ctx(app, runtime, adapter).flow("chat")
    assert answer == NO_MODEL_ANSWER
    assert adapter.texts == [NO_MODEL_ANSWER]


async def test_unknown_flow(runtime: Runtime) -> None:
    with pytest.raises(FlowError) as info:
        await _ctx(BotApp(), runtime, RecordingAdapter()).flow("no-such-flow")
    assert info.value.flow == "no-such-flow"
    assert "chat" in str(info.value)


async def test_graph_compiled_once(runtime: Runtime) -> None:
    runner = GraphFlowRunner(runtime)
    assert runner.graph("chat") is runner.graph("chat")


async def test_rerun_of_the_turn_sends_nothing_again(runtime: Runtime) -> None:
    message = make_inbound("hi", event_id="evt-flow-rerun")
    first, second = RecordingAdapter(), RecordingAdapter()
    for adapter in (first, second):
        app = BotApp(chat_model=scripted_model(["hello"]))
        await _ctx(app, runtime, adapter, message).flow("chat")
    assert first.texts == ["hello"]
    assert second.texts == []
