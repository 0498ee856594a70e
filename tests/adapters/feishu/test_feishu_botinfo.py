"""The bot's own open_id: looked up at start-up when not configured, shared through Redis."""

from __future__ import annotations

from typing import Any

import pytest
from fake_feishu import FakeFeishu
from feishu_helpers import MakeAdapter, message_event, signed
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from botcore.channel import Accepted, Rejected
from botcore.keys import KeyBuilder

BOT_KEY = "test:chan:feishu:fs:bot_open_id"


def group_mention(open_id: str, name: str = "Helpdesk", user_id: str = "") -> dict[str, Any]:
    mention = {"key": "@_user_1", "id": {"open_id": open_id, "user_id": user_id},
               "name": name, "tenant_key": "tk"}
    return message_event("@_user_1 hello", chat_type="group", mentions=[mention])


async def test_startup_looks_up_and_shares_the_open_id(
        make_adapter: MakeAdapter, fake: FakeFeishu, redis: Redis, keys: KeyBuilder) -> None:
    assert keys.channel_state("feishu", "fs", "bot_open_id") == BOT_KEY
    await make_adapter(bot_open_id=None).startup()  # the worker / serve process
    assert "GET /open-apis/bot/v3/info" in fake.calls
    assert await redis.get(BOT_KEY) == fake.bot_open_id.encode()

    web = make_adapter(bot_open_id=None)  # another process: no startup lookup of its own
    calls = len(fake.calls)
    ours = await web.handle_webhook(signed(group_mention(fake.bot_open_id)))
    # another bot's mention: the guess would take it for ours, the known open_id does not
    other = await web.handle_webhook(signed(group_mention("ou_other_bot", "Other",
                                                          user_id="")))
    assert len(fake.calls) == calls  # handle_webhook never calls Feishu
    assert isinstance(ours, Accepted)
    assert isinstance(other, Accepted)
    assert (ours.messages[0].mentioned, ours.messages[0].text) == (True, "hello")
    assert other.messages[0].mentioned is False


async def test_configured_open_id_needs_no_lookup(make_adapter: MakeAdapter,
                                                  fake: FakeFeishu, redis: Redis) -> None:
    await make_adapter().startup()
    assert fake.calls == []
    assert await redis.get(BOT_KEY) is None


async def test_failed_lookup_does_not_stop_startup(make_adapter: MakeAdapter,
                                                   redis: Redis) -> None:
    adapter = make_adapter(bot_open_id=None, app_secret="wrong")
    await adapter.startup()  # logged; mentions are guessed
    assert await redis.get(BOT_KEY) is None
    outcome = await adapter.handle_webhook(signed(group_mention("ou_some_bot")))
    assert isinstance(outcome, Accepted)
    assert outcome.messages[0].mentioned is True  # the guess: a bot was @-mentioned


async def test_redis_error_is_a_clean_503(make_adapter: MakeAdapter,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = make_adapter(bot_open_id=None)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RedisConnectionError("down")

    monkeypatch.setattr(adapter.deps.redis, "get", broken)
    outcome = await adapter.handle_webhook(signed(message_event()))
    assert outcome == Rejected(503, "redis_unavailable")
