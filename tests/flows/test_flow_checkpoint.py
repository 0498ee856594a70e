"""RedisSaver against the langgraph-checkpoint-conformance suite, on a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.test_utils import put_test_checkpoint
from redis.asyncio import Redis

from botcore.keys import KeyBuilder
from flows.checkpoint import RedisSaver


async def test_redis_saver_passes_the_conformance_suite(redis: Redis) -> None:
    @checkpointer_test(name="RedisSaver")
    async def factory() -> AsyncIterator[RedisSaver]:
        yield RedisSaver(redis, KeyBuilder(prefix="conf"), ttl=600)

    report = await validate(factory)
    failures = {cap: result.failures for cap, result in report.results.items()
                if result.passed is False}
    assert failures == {}
    passed = {cap for cap, result in report.results.items() if result.passed}
    assert {"put", "put_writes", "get_tuple", "list", "delete_thread",
            "copy_thread", "prune"} <= passed


async def test_every_checkpoint_key_has_a_ttl(redis: Redis) -> None:
    saver = RedisSaver(redis, KeyBuilder(prefix="ttl"), ttl=600)
    stored = await put_test_checkpoint(saver, thread_id="web:b:c", channel_values={"a": 1})
    await saver.aput_writes(stored, [("a", 2)], "task-1")
    names = [k async for k in redis.scan_iter(match="ttl:*")]
    assert names
    ttls = [await redis.ttl(name) for name in names]
    assert all(0 < ttl <= 600 for ttl in ttls)
    await saver.adelete_thread("web:b:c")
    assert [k async for k in redis.scan_iter(match="ttl:*")] == []
