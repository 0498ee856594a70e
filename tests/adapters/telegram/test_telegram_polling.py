"""Long polling (offsets confirmed only after ingest) and start-up (getMe, setWebhook)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from conftest import SECRET, MakeAdapter
from fake_telegram import FakeTelegram
from tg_updates import message

from adapters.telegram import TelegramAdapter
from botcore.errors import ConfigError, IngressError
from botcore.message import InboundMessage


async def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def offsets(fake: FakeTelegram) -> list[object]:
    return [call.get("offset") for call in fake.calls_to("getUpdates")]


class Sleeps:
    """Records backoff waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def polling(make_adapter: MakeAdapter) -> tuple[TelegramAdapter, Sleeps]:
    adapter = make_adapter(mode="polling", secret_token=None, poll_timeout=1)
    sleeps = Sleeps()
    adapter.sleep = sleeps
    return adapter, sleeps


async def run(adapter: TelegramAdapter, ingest: Callable[[InboundMessage], Awaitable[bool]],
              until: Callable[[], bool]) -> None:
    task = asyncio.create_task(adapter.listen(ingest))
    try:
        await wait_until(lambda: until() or task.done())
        if task.done():
            task.result()  # surface an unexpected crash
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_offsets_confirmed_after_ingest(make_adapter: MakeAdapter,
                                              fake: FakeTelegram) -> None:
    adapter, _ = polling(make_adapter)
    fake.webhook = {"url": "https://old.example/hook"}  # must be deleted first
    fake.push_update(message("one", update_id=500))
    fake.push_update(message("two", update_id=501))
    seen: list[str] = []

    async def ingest(msg: InboundMessage) -> bool:
        seen.append(msg.event_id)
        return True

    await run(adapter, ingest, lambda: 502 in offsets(fake))
    assert fake.calls[0].method == "deleteWebhook"
    assert fake.calls_to("deleteWebhook") == [{"drop_pending_updates": False}]
    assert seen == ["500", "501"]
    assert offsets(fake)[:2] == [None, 502]
    first = fake.calls_to("getUpdates")[0]
    assert first["timeout"] == 1
    assert first["allowed_updates"] == ["message", "edited_message", "callback_query",
                                        "my_chat_member"]


async def test_failed_ingest_does_not_advance_offset(make_adapter: MakeAdapter,
                                                     fake: FakeTelegram) -> None:
    adapter, sleeps = polling(make_adapter)
    fake.push_update(message("one", update_id=700))
    fake.push_update(message("two", update_id=701))
    seen: list[str] = []
    failures = {"701": 1}

    async def ingest(msg: InboundMessage) -> bool:
        seen.append(msg.event_id)
        if failures.get(msg.event_id):
            failures[msg.event_id] -= 1
            raise IngressError("redis down")
        return True

    await run(adapter, ingest, lambda: 702 in offsets(fake))
    # 700 was stored, so it is confirmed; 701 failed, so it is fetched (and ingested) again.
    assert offsets(fake)[:3] == [None, 701, 702]
    assert seen == ["700", "701", "701"]
    assert sleeps.waits == [1.0]


async def test_backoff_on_errors_and_retry_after(make_adapter: MakeAdapter,
                                                 fake: FakeTelegram) -> None:
    adapter, sleeps = polling(make_adapter)
    fake.fail_next("getUpdates", 502, times=3)
    fake.fail_next("getUpdates", 429, retry_after=7)
    fake.fail_next("getUpdates", 409, "Conflict: terminated by other getUpdates request")
    fake.push_update(message("late", update_id=9))

    async def ingest(msg: InboundMessage) -> bool:
        return True

    await run(adapter, ingest, lambda: 10 in offsets(fake))
    assert sleeps.waits == [1.0, 2.0, 4.0, 7.0, 16.0]


async def test_unknown_and_odd_updates_are_skipped(make_adapter: MakeAdapter,
                                                   fake: FakeTelegram) -> None:
    adapter, _ = polling(make_adapter)
    fake.push_update({"update_id": 40, "poll": {"id": "p"}})
    fake.push_update({"update_id": 41, "message": {"message_id": "bad"}})
    fake.push_update(message("ok", update_id=42))
    seen: list[str] = []

    async def ingest(msg: InboundMessage) -> bool:
        seen.append(msg.text)
        return True

    await run(adapter, ingest, lambda: 43 in offsets(fake))
    assert seen == ["ok"]


async def test_refused_token_stops_polling(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="polling", secret_token=None, token="9:bad")

    async def ingest(msg: InboundMessage) -> bool:
        return True

    with pytest.raises(ConfigError) as info:
        await adapter.listen(ingest)
    assert info.value.key == "bots.tg.token"


async def test_listen_requires_polling_mode(adapter: TelegramAdapter) -> None:
    async def ingest(msg: InboundMessage) -> bool:
        return True

    with pytest.raises(ConfigError):
        await adapter.listen(ingest)


# --- start-up -----------------------------------------------------------------------------


async def test_startup_sets_webhook(make_adapter: MakeAdapter, fake: FakeTelegram) -> None:
    adapter = make_adapter(webhook_url="https://bots.example.com/webhooks/telegram/tg",
                           allowed_updates=["message", "callback_query"])
    await adapter.startup()
    assert [c.method for c in fake.calls] == ["getMe", "setWebhook"]
    assert fake.calls_to("setWebhook") == [{
        "url": "https://bots.example.com/webhooks/telegram/tg", "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"]}]
    await adapter.shutdown()


async def test_startup_without_webhook_url_only_checks(adapter: TelegramAdapter,
                                                       fake: FakeTelegram) -> None:
    await adapter.startup()
    assert [c.method for c in fake.calls] == ["getMe"]


async def test_startup_polling_does_not_set_webhook(make_adapter: MakeAdapter,
                                                    fake: FakeTelegram) -> None:
    adapter = make_adapter(mode="polling", secret_token=None,
                           webhook_url="https://bots.example.com/x")
    await adapter.startup()
    assert fake.calls_to("setWebhook") == []


async def test_startup_detects_wrong_username(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(bot_username="someone_else_bot")
    with pytest.raises(ConfigError) as info:
        await adapter.startup()
    assert info.value.key == "bots.tg.bot_username"
    assert "botcore_bot" in str(info.value)


async def test_startup_refused_token_is_config_error(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(token="9:bad")
    with pytest.raises(ConfigError) as info:
        await adapter.startup()
    assert info.value.key == "bots.tg.token"
    assert "9:bad" not in str(info.value)
