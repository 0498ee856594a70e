"""Drain tasks pushed by the admit script in Celery's wire format run on a real worker."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis as redis_sync

from botcore.ingress.inbox import Inbox
from botcore.queue import CeleryEnqueuer
from botcore.queue.celery_app import make_celery
from botcore.testing import make_inbound
from botcore.testing.stack import BotStack, wait_until

pytestmark = pytest.mark.integration


def _enqueuer(stack: BotStack) -> CeleryEnqueuer:
    enqueuer = CeleryEnqueuer(make_celery(stack.settings, stack.redis_url),
                              stack.settings.worker.queue)
    assert enqueuer.prepare()
    return enqueuer


async def test_template_matches_what_celery_sends(clean_redis: str, tmp_path: Path) -> None:
    stack = BotStack(clean_redis, tmp_path, {"bots": {}})
    try:
        enqueuer = _enqueuer(stack)
        key, raw = enqueuer.prebuilt("web:p:c-1") or ("", "")
        assert key == "botcore:celery:botcore"
        message = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        assert (args, kwargs) == (["web:p:c-1"], {})
        assert message["headers"]["task"] == "botcore.drain"
        assert message["properties"]["delivery_info"]["routing_key"] == "botcore"
        other = json.loads((enqueuer.prebuilt("web:p:c-2") or ("", ""))[1])
        assert other["headers"]["id"] != message["headers"]["id"]  # fresh task ids
        client = redis_sync.Redis.from_url(clean_redis)
        assert not [k for k in client.scan_iter() if b"capture" in k]  # scratch queue gone
    finally:
        await stack.close()


async def test_admit_pushes_one_drain_task_that_a_worker_runs(clean_redis: str,
                                                                tmp_path: Path) -> None:
    stack = BotStack(clean_redis, tmp_path, {"bots": {"p": {
        "channel": "web", "app": "tests.bots.pipeline_bot:app"}}})
    try:
        enqueuer = _enqueuer(stack)
        inbox = Inbox(stack.redis, stack.keys)
        first = make_inbound("hello", bot_id="p", chat_id="c-pre")
        second = make_inbound("again", bot_id="p", chat_id="c-pre")
        conv = first.conversation.id
        admitted = [await inbox.admit(m, drain_task=enqueuer.prebuilt(conv))
                    for m in (first, second)]
        assert [a.pushed for a in admitted] == [True, False]  # the flag was claimed once
        assert await stack.redis.llen("botcore:celery:botcore") == 1
        stack.start_worker()

        async def answered() -> bool:
            return len(await stack.replies("p", "c-pre")) == 2
        await wait_until(answered, 30)
        assert [r["text"] for r in await stack.replies("p", "c-pre")] == [
            "echo: hello", "echo: again"]
    finally:
        await stack.close()
