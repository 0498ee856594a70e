"""A RAG answer's citations reach the browser (SSE of /chat/api/.../events) and the
OpenAI-compatible API, after a real flow turn written by the web chat adapter (real Redis)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from botcore.app import BotApp
from botcore.message import InboundMessage
from botcore.runtime import Runtime
from botcore.settings import load_settings
from botcore.web.chat import _decode_entry
from botcore.web.openai_api import build_openai_router
from botcore.webchat import WebChatAdapter
from tests.flows.citation_turn import (
    EXPECTED,
    POLICY,
    WEB_PAGE,
    StaticRetriever,
    make_runner,
    run_turn,
)
from tests.flows.conftest import fake_model
from tests.webchat.conftest import make_runtime
from tests.webchat.test_webchat_sse import read_sse

API_KEY = "sk-kb-test"


async def test_sse_message_event_lists_the_citations(server_url: str, writer: WebChatAdapter,
                                                     redis: Redis) -> None:
    app = BotApp("t", chat_model=fake_model("7 天内可以退货 [1]"))
    message = InboundMessage.model_validate({
        "channel": "web", "bot_id": "demo", "event_id": "e1", "message_id": "e1",
        "conversation": {"channel": "web", "bot_id": "demo", "chat_id": "c1"},
        "sender": {"id": "u"}, "text": "能退货吗", "mentioned": True})
    answer = await run_turn(make_runner(redis, writer.deps.keys), app, writer, message, "rag",
                            retriever=StaticRetriever(POLICY, WEB_PAGE))
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as client,
        client.stream("GET", "/chat/api/demo/events", params={"conversation_id": "c1"}) as resp,
    ):
        (_id, event), = await read_sse(resp.aiter_lines(), 1)
    assert event["type"] == "message"
    assert event["text"] == answer
    assert event["citations"] == EXPECTED  # parsed back to a list, ready for the widget


def test_a_garbled_citations_field_decodes_to_an_empty_list() -> None:
    event = _decode_entry({b"type": b"message", b"citations": b"{not json"})
    assert event["citations"] == []


class _RagIngress:
    """Stands in for the ingress + worker: answers each message with a real RAG turn."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.runner = make_runner(runtime.redis, runtime.keys)

    async def ingest(self, message: InboundMessage) -> None:
        adapter = self.runtime.adapter_for(message.bot_id, "web")
        app = BotApp("t", chat_model=fake_model("7 天内可以退货 [1]"))
        await run_turn(self.runner, app, adapter, message, "rag",
                       retriever=StaticRetriever(POLICY, WEB_PAGE))


@pytest.fixture
async def api(redis: Redis, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    settings = load_settings(key_prefix="test", bots={
        "kb": {"channel": "web", "app": "examples.none:app", "api_keys": [API_KEY]}})
    runtime = make_runtime(settings, redis)
    app = FastAPI()
    app.state.runtime = runtime
    app.state.ingress = _RagIngress(runtime)
    app.include_router(build_openai_router(timeout=10))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test", timeout=20,
                                 headers={"Authorization": f"Bearer {API_KEY}"}) as client:
        yield client
    await runtime.http.aclose()


def _body(stream: bool) -> dict[str, Any]:
    return {"model": "kb", "stream": stream, "messages": [{"role": "user", "content": "退货?"}]}


async def test_openai_completion_message_has_citations(api: httpx.AsyncClient) -> None:
    resp = await api.post("/v1/chat/completions", json=_body(False))
    assert resp.status_code == 200
    message = resp.json()["choices"][0]["message"]
    assert message["content"].startswith("7 天内可以退货 [1]")
    assert message["citations"] == EXPECTED


async def test_openai_stream_puts_citations_on_the_last_chunk(api: httpx.AsyncClient) -> None:
    resp = await api.post("/v1/chat/completions", json=_body(True))
    lines = [line.removeprefix("data: ") for line in resp.text.splitlines() if line]
    assert lines[-1] == "[DONE]"
    chunks = [json.loads(line) for line in lines[:-1]]
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop"
    assert last["delta"] == {"citations": EXPECTED}
    assert all("citations" not in c["choices"][0]["delta"] for c in chunks[:-1])
