"""Bots answering through real ``flows/`` graphs with scripted LangChain fake models."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from botcore import BotApp
from botcore.prompts import CallNext, PromptRequest, PromptResult
from botcore.retrieval import Passage

#: The scripted model's RAG answer: it ends in whitespace, which the flow strips.
RAG_ANSWER = "Orders over 99 yuan ship free [1].\n"


class _Retriever:
    async def retrieve(self, query: str, *, k: int = 5) -> list[Passage]:
        return [Passage(text="满 99 元包邮。Orders over 99 yuan ship free.", score=1.0,
                        source="shipping.md", chunk_id="1", kb="faq", heading="Free shipping")]


class _ToolFakeModel(GenericFakeChatModel):
    """The scripted model, streaming word by word; its tool calls survive streaming (tools
    are "bound" by ignoring them: the answers are scripted)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _stream(self, messages: Any, stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        message = next(self.messages)
        assert isinstance(message, AIMessage)
        assert isinstance(message.content, str)
        for token in re.split(r"(\s)", message.content):
            if token:
                time.sleep(0.02)  # slow enough for the web stream to flush deltas
                yield ChatGenerationChunk(message=AIMessageChunk(content=token))
        calls = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c["id"], "index": i}
                 for i, c in enumerate(message.tool_calls)]
        if calls:
            yield ChatGenerationChunk(message=AIMessageChunk(content="",
                                                             tool_call_chunks=calls))


def _cycling(*answers: AIMessage) -> GenericFakeChatModel:
    return _ToolFakeModel(messages=itertools.cycle(answers))


rag = BotApp("rag", chat_model=_cycling(AIMessage(RAG_ANSWER)))
rag.default_flow("rag", retriever=_Retriever())

agent = BotApp("agent", chat_model=_cycling(
    AIMessage("Let me look that up.", tool_calls=[
        {"name": "weather", "args": {"city": "Paris"}, "id": "call-1", "type": "tool_call"}]),
    AIMessage("It is sunny in Paris.")))
agent.default_flow("agent")


@agent.tool
async def weather(city: str) -> str:
    """Today's weather in a city."""
    return f"sunny in {city}"


polite = BotApp("polite", chat_model=_cycling(AIMessage("the plain answer")))
polite.default_flow("chat")


@polite.prompt
async def sign(req: PromptRequest, call_next: CallNext) -> PromptResult:
    """Rewrite the model's answer after it was streamed."""
    result = await call_next(req)
    return PromptResult(AIMessage(f"Dear customer, {result.text}."))
