"""Model time limits nest (attempts < model budget < task limit), and a primary model that
hangs past its timeout gives way to the ``[[llm.fallbacks]]`` model within the budget."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from botcore.errors import ConfigError
from botcore.flowrun import GraphFlowRunner
from botcore.keys import KeyBuilder
from botcore.llm import check_timeouts, make_fallback_models, model_budget, worst_case
from botcore.settings import LLMSettings, Settings


async def _serve(handler: Any) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.close()


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(65536)  # takes the request, never answers
    await asyncio.sleep(30)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An OpenAI-compatible streamed chat completion."""
    await reader.read(65536)
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "backup",
             "choices": [{"index": 0, "delta": {"role": "assistant",
                                                "content": "备用模型的回答"},
                          "finish_reason": None}]}
    done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    body = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in (chunk, done))
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                 b"connection: close\r\n\r\n" + (body + "data: [DONE]\n\n").encode())
    await writer.drain()
    writer.close()


@pytest.fixture
async def hanging() -> AsyncIterator[str]:
    async for url in _serve(_hang):
        yield url


@pytest.fixture
async def backup() -> AsyncIterator[str]:
    async for url in _serve(_answer):
        yield url


def test_default_limits_nest() -> None:
    settings = Settings(llm=LLMSettings(model="m", fallbacks=[LLMSettings(model="f")]))
    limit = float(settings.worker.task_time_limit)
    budget = model_budget(limit)
    assert worst_case(settings.llm) + worst_case(settings.llm.fallbacks[0]) < budget < limit
    check_timeouts(settings.llm, budget, limit)


def test_attempts_longer_than_the_budget_are_refused_at_start(redis: Any) -> None:
    settings = Settings(llm=LLMSettings(model="m", timeout=60, max_retries=2))
    runtime = SimpleNamespace(redis=redis, keys=KeyBuilder(prefix="t"), settings=settings)
    with pytest.raises(ConfigError, match=r"llm\.timeout"):
        GraphFlowRunner(runtime)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="task_time_limit"):
        check_timeouts(LLMSettings(), 120, 120)


async def test_hanging_primary_gives_way_to_the_configured_fallback(
        harness: Any, hanging: str, backup: str) -> None:
    llm = LLMSettings(model="primary", base_url=hanging, api_key="k", timeout=0.5,
                      max_retries=1,
                      fallbacks=[LLMSettings(model="backup", base_url=backup, api_key="k",
                                             timeout=5, max_retries=0)])
    assert len(make_fallback_models(llm)) == 1
    h = harness(None)
    h.runner.runtime.settings = Settings(llm=llm)
    started = time.monotonic()
    answer = await h.turn("你好", "chat", model_timeout=8)
    assert answer == "备用模型的回答"
    assert h.replier.sent == ["备用模型的回答"]
    assert time.monotonic() - started < 5  # two 0.5 s attempts, then the fallback
