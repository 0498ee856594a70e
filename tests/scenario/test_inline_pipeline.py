"""The whole turn in one process: webhook route → inbox → InlineEnqueuer → drain → handler →
reply, on a real Redis (the unit-test path of the Enqueuer contract)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from botcore.flowrun import GraphFlowRunner
from botcore.ingress.drain import Drainer
from botcore.ingress.inbox import Inbox
from botcore.message import ConversationKey
from botcore.queue import InlineEnqueuer
from botcore.runtime import Runtime
from botcore.sessions.redis import RedisSessionStore
from botcore.settings import load_settings
from botcore.turns import TurnRunner
from botcore.web.app import create_app


def _drainer(runtime: Runtime) -> Drainer:
    store = RedisSessionStore(runtime.redis, runtime.keys)
    turns = TurnRunner(runtime, store, GraphFlowRunner(runtime))
    return Drainer(Inbox(runtime.redis, runtime.keys), runtime.settings.ingress, turns.run,
                   turns.apologize)


async def test_inline_enqueuer_runs_the_turn_in_process(clean_redis: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    settings = load_settings(redis_url=clean_redis, bots={
        "p": {"channel": "web", "app": "tests.bots.pipeline_bot:app"}})
    drains: list[str] = []

    async def drain(conversation_id: str) -> object:
        drains.append(conversation_id)
        return await _drainer(app.state.runtime).drain(conversation_id)

    inline = InlineEnqueuer(drain)
    app = create_app(settings, enqueuer=inline, listen=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for n in range(3):
                response = await client.post("/webhooks/web/p", json={
                    "conversation_id": "c1", "user_id": "u1", "text": f"m{n}",
                    "client_msg_id": f"id{n}"})
                assert response.status_code == 200
            await inline.wait()
        runtime: Runtime = app.state.runtime
        key = runtime.keys.web_outbox(ConversationKey(channel="web", bot_id="p",
                                                      chat_id="c1").id)
        events = await runtime.redis.xrange(key)
    assert [fields[b"text"].decode() for _, fields in events] == [
        "echo: m0", "echo: m1", "echo: m2"]
    assert drains  # the drains ran in this process
    assert set(drains) == {"web:p:c1"}
