"""The durable pipeline end to end: webhook route → Redis inbox → real Celery worker → reply.

Real redis-server, real worker processes; nothing of botcore's is mocked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botcore.testing.stack import BotStack, wait_until

pytestmark = pytest.mark.integration

BOT = {"channel": "web", "app": "tests.bots.pipeline_bot:app"}


def _config(**ingress: object) -> dict[str, object]:
    return {"bots": {"p": BOT},
            "ingress": {"lease_ttl": 2.0, "schedule_ttl": 3.0, "sweep_interval": 0.2,
                        **ingress}}


@pytest.fixture
async def stack(clean_redis: str, tmp_path: Path) -> AsyncIterator[BotStack]:
    bots = BotStack(clean_redis, tmp_path, _config(max_attempts=2))
    try:
        yield bots
    finally:
        await bots.close()


def _msg(conv: str, text: str, msg_id: str) -> dict[str, str]:
    return {"conversation_id": conv, "user_id": "u1", "text": text, "client_msg_id": msg_id}


async def _replies(stack: BotStack, conv: str, count: int, timeout: float = 30) -> list[str]:
    async def enough() -> bool:
        return len(await stack.replies("p", conv)) >= count
    await wait_until(enough, timeout)
    return [r["text"] for r in await stack.replies("p", conv)]


async def test_twenty_messages_in_50ms_are_answered_in_arrival_order(stack: BotStack) -> None:
    stack.start_worker(concurrency=2)
    stack.start_worker(concurrency=2)
    async with stack.client() as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(20):
            response = await client.post("/webhooks/web/p", json=_msg("c-order", f"m{i}", f"id{i}"))
            assert response.status_code == 200
        assert loop.time() - started < 0.5  # arrival is a burst (50 ms on an idle machine)
        texts = await _replies(stack, "c-order", 20)
    assert texts == [f"echo: m{i}" for i in range(20)]


async def test_same_event_three_times_gives_one_answer(stack: BotStack) -> None:
    stack.start_worker()
    async with stack.client() as client:
        for _ in range(3):
            response = await client.post("/webhooks/web/p", json=_msg("c-dup", "once", "same-id"))
            assert response.status_code == 200
        await client.post("/webhooks/web/p", json=_msg("c-dup", "after", "other-id"))
        texts = await _replies(stack, "c-dup", 2)
        await asyncio.sleep(1.0)  # a duplicate would have arrived by now
    assert [r["text"] for r in await stack.replies("p", "c-dup")] == ["echo: once", "echo: after"]
    assert texts[0] == "echo: once"


async def test_worker_killed_mid_turn_answers_exactly_once(stack: BotStack) -> None:
    first = stack.start_worker()
    async with stack.client() as client:
        await client.post("/webhooks/web/p", json=_msg("c-kill", "slow 1500", "k1"))
        session_vars = stack.keys.session("web:p:c-kill", "vars")

        async def turn_started() -> bool:
            return await stack.redis.hget(session_vars, "started") is not None
        await wait_until(turn_started, 30)
        stack.kill_worker(first)  # SIGKILL in the middle of the turn
        assert await stack.replies("p", "c-kill") == []
        stack.start_worker()
        texts = await _replies(stack, "c-kill", 1, timeout=40)
        await asyncio.sleep(2.5)  # a second answer would come within a lease period
    assert [r["text"] for r in await stack.replies("p", "c-kill")] == ["done slow 1500"]
    assert texts == ["done slow 1500"]


async def test_failing_handler_dead_letters_and_next_message_is_answered(
        stack: BotStack) -> None:
    stack.start_worker()
    async with stack.client() as client:
        await client.post("/webhooks/web/p", json=_msg("c-dlq", "boom", "b1"))
        await client.post("/webhooks/web/p", json=_msg("c-dlq", "still here?", "b2"))
        texts = await _replies(stack, "c-dlq", 2)
    assert texts == ["sorry, that failed", "echo: still here?"]
    dead = [json.loads(x) for x in await stack.redis.lrange(stack.keys.dead_letters(), 0, -1)]
    assert len(dead) == 1
    assert dead[0]["entry"]["message"]["event_id"] == "b1"
    assert "boom on purpose" in dead[0]["error"]
    assert dead[0]["attempts"] == 2


async def test_messages_wait_for_a_worker_and_are_not_lost(stack: BotStack) -> None:
    async with stack.client() as client:
        for i in range(5):
            await client.post("/webhooks/web/p", json=_msg("c-late", f"w{i}", f"w{i}"))
        stack.start_worker()  # no worker was running when they arrived
        texts = await _replies(stack, "c-late", 5)
    assert texts == [f"echo: w{i}" for i in range(5)]


async def test_metrics_count_webhooks_and_worker_turns(stack: BotStack) -> None:
    stack.start_worker()
    async with stack.client() as client:
        await client.post("/webhooks/web/p", json=_msg("c-met", "one", "m1"))
        await client.post("/webhooks/web/p", json=_msg("c-met", "one", "m1"))  # redelivery
        await client.post("/webhooks/web/p", json=_msg("c-met", "boom", "m2"))
        await client.post("/webhooks/web/nope", json=_msg("c-met", "x", "m3"))
        await _replies(stack, "c-met", 2)
        body = ""

        async def drains_reported() -> bool:  # workers report when their drain ends
            nonlocal body
            body = (await client.get("/metrics")).text
            return 'botcore_worker_events{event="dead_letters"} 1.0' in body
        await wait_until(drains_reported, 10)
    assert 'botcore_webhook_requests_total{channel="web",outcome="accepted"} 2.0' in body
    assert 'botcore_webhook_requests_total{channel="web",outcome="duplicate"} 1.0' in body
    assert 'botcore_webhook_requests_total{channel="unknown",outcome="unknown_bot"} 1.0' in body
    assert 'botcore_worker_events{event="turns"} 1.0' in body
    assert 'botcore_worker_events{event="dead_letters"} 1.0' in body
    assert 'botcore_worker_events{event="turn_failures"} 2.0' in body
    assert "botcore_dead_letters 1.0" in body


async def test_one_worker_process_drains_several_conversations_at_once(
        clean_redis: str, tmp_path: Path) -> None:
    stack = BotStack(clean_redis, tmp_path, {
        "bots": {"p": BOT}, "worker": {"drains_per_process": 4},
        "ingress": {"lease_ttl": 5.0, "sweep_interval": 0.2}})
    stack.start_worker(concurrency=1)  # one pool process
    try:
        async with stack.client() as client:
            for conv in ("c-a", "c-b", "c-c"):
                await client.post("/webhooks/web/p", json=_msg(conv, "slow 4000", conv))

            async def all_started_none_answered() -> bool:
                started = [await stack.redis.hget(stack.keys.session(f"web:p:{c}", "vars"),
                                                  "started") for c in ("c-a", "c-b", "c-c")]
                answered = [await stack.replies("p", c) for c in ("c-a", "c-b", "c-c")]
                if any(answered):
                    raise AssertionError("a turn finished before all three had started")
                return all(started)
            await wait_until(all_started_none_answered, 30)
            for conv in ("c-a", "c-b", "c-c"):
                assert await _replies(stack, conv, 1) == ["done slow 4000"]
    finally:
        await stack.close()
