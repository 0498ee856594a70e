"""``typing_indicator``: sendChatAction at once and periodically while a turn runs."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from fake_telegram import FakeTelegram
from test_telegram_send import GROUP_ID, out

from adapters.telegram import TelegramAdapter
from adapters.telegram.adapter import TYPING_INTERVAL
from botcore.message import ConversationKey, OutboundMessage

FAST = 0.05


def typing_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("telegram-typing")]


async def test_actions_are_sent_at_once_and_periodically(adapter: TelegramAdapter,
                                                         fake: FakeTelegram) -> None:
    message = out(chat_id=GROUP_ID, context={"message_thread_id": 9})
    started = time.monotonic()
    async with adapter.typing_indicator(message, interval=FAST):
        await asyncio.sleep(0.01)
        assert len(fake.calls_to("sendChatAction")) == 1  # at once
        await asyncio.sleep(0.25)
    during = len(fake.calls_to("sendChatAction"))
    assert 3 <= during <= 7
    await asyncio.sleep(4 * FAST)
    assert len(fake.calls_to("sendChatAction")) == during  # stopped on exit
    assert typing_tasks() == []
    assert fake.calls_to("sendChatAction")[0] == {"chat_id": GROUP_ID, "action": "typing",
                                                  "message_thread_id": 9}
    times = [c.at - started for c in fake.calls if c.method == "sendChatAction"]
    assert all(b - a >= FAST * 0.8 for a, b in itertools.pairwise(times))


async def test_default_interval_is_under_five_seconds(adapter: TelegramAdapter,
                                                      fake: FakeTelegram) -> None:
    async with adapter.typing_indicator(out()):
        await asyncio.sleep(0.05)
    assert len(fake.calls_to("sendChatAction")) == 1
    assert 4.0 <= TYPING_INTERVAL < 5.0


async def test_failed_actions_never_fail_the_turn(adapter: TelegramAdapter,
                                                  fake: FakeTelegram,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    fake.fail_next("sendChatAction", 403, "Forbidden: bot was blocked by the user")
    fake.fail_next("sendChatAction", 500)
    caplog.set_level("DEBUG", logger="adapters.telegram.adapter")
    async with adapter.typing_indicator(out(), interval=FAST):
        await asyncio.sleep(0.2)
    assert len(fake.calls_to("sendChatAction")) >= 3  # kept trying after the failures
    failures = [r for r in caplog.records if "sendChatAction failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.levelname == "DEBUG" for r in failures)


async def test_429_waits_its_retry_after(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    fake.fail_next("sendChatAction", 429, retry_after=30)
    async with adapter.typing_indicator(out(), interval=FAST):
        await asyncio.sleep(0.2)
    assert len(fake.calls_to("sendChatAction")) == 1


async def test_the_turns_exception_passes_through_and_typing_stops(
        adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    async def turn() -> None:
        async with adapter.typing_indicator(out(), interval=FAST):
            await asyncio.sleep(0.01)
            raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        await turn()
    sent = len(fake.calls_to("sendChatAction"))
    await asyncio.sleep(3 * FAST)
    assert len(fake.calls_to("sendChatAction")) == sent == 1
    assert typing_tasks() == []


async def test_cancelled_turn_stops_typing(adapter: TelegramAdapter,
                                           fake: FakeTelegram) -> None:
    async def turn() -> None:
        async with adapter.typing_indicator(out(), interval=FAST):
            await asyncio.sleep(10)

    task = asyncio.create_task(turn())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    sent = len(fake.calls_to("sendChatAction"))
    await asyncio.sleep(3 * FAST)
    assert len(fake.calls_to("sendChatAction")) == sent >= 2
    assert typing_tasks() == []


async def test_no_chat_id_is_a_no_op(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    message = OutboundMessage(conversation=ConversationKey(channel="telegram", bot_id="tg",
                                                           chat_id="not-a-number"), text="")
    async with adapter.typing_indicator(message, interval=FAST):
        await asyncio.sleep(0.05)
    assert fake.calls == []
