"""A paused handoff survives a worker restart (real Redis, real worker processes)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botcore.handoff import HandoffDesk
from botcore.testing.stack import BotStack, wait_until
from flows.customer_service import HANDOFF_TEXT
from flows.rag import RETRIEVAL_ONLY

pytestmark = pytest.mark.integration


@pytest.fixture
async def stack(clean_redis: str, tmp_path: Path) -> AsyncIterator[BotStack]:
    bots = BotStack(clean_redis, tmp_path, {
        "bots": {"cs": {"channel": "web", "app": "tests.flows.handoff_bot:app"}},
        "ingress": {"lease_ttl": 2.0, "schedule_ttl": 3.0, "sweep_interval": 0.2}})
    try:
        yield bots
    finally:
        await bots.close()


def _msg(text: str, msg_id: str) -> dict[str, str]:
    return {"conversation_id": "c-h", "user_id": "u1", "text": text, "client_msg_id": msg_id}


async def test_handoff_survives_a_worker_restart(stack: BotStack) -> None:
    async def replies(n: int) -> list[str]:
        async def enough() -> bool:
            return len(await stack.replies("cs", "c-h")) >= n
        await wait_until(enough, 40)
        return [r["text"] for r in await stack.replies("cs", "c-h")]

    first = stack.start_worker()
    desk = HandoffDesk(stack.redis, stack.keys)
    conv = "web:cs:c-h"
    async with stack.client() as client:
        await client.post("/webhooks/web/cs", json=_msg("转人工", "h1"))
        assert await replies(1) == [HANDOFF_TEXT]
        stack.kill_worker(first)
        stack.start_worker()
        await client.post("/webhooks/web/cs", json=_msg("有人吗", "h2"))

        async def relayed() -> bool:
            return len(await desk.transcript(conv)) == 2
        await wait_until(relayed, 40)
        assert await desk.status(conv) == "open"
        assert await desk.release(conv)
        await client.post("/webhooks/web/cs", json=_msg("运费多少", "h3"))
        texts = await replies(2)
    assert texts[0] == HANDOFF_TEXT
    assert texts[1].startswith(RETRIEVAL_ONLY)
    assert "ship.md" in texts[1]
    assert len(texts) == 2  # the relayed message was never answered by the bot
