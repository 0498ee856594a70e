"""Outbound limits shared through Redis by every worker: an exact 20/min window per group
(no burst on top), buckets for 1 msg/s per chat and 30/s per bot."""

from __future__ import annotations

import time

import pytest
from conftest import MakeAdapter
from fake_telegram import FakeTelegram
from test_telegram_send import GROUP_ID, PRIVATE_ID, out
from test_telegram_stream import with_clock

from adapters.telegram.api import Limits
from adapters.telegram.models import SendMessage
from botcore.errors import ChannelRateLimited

NO_BUCKETS = {"per_chat": (1000.0, 1000.0), "per_bot": (1000.0, 1000.0)}


def test_default_limits_follow_the_bot_faq() -> None:
    limits = Limits()
    assert limits.per_group == (20, 60.0)
    assert limits.per_chat[0] == 1.0
    assert limits.per_bot[0] == 30.0


async def test_group_gets_exactly_20_in_a_minute_across_workers(
        make_adapter: MakeAdapter, fake: FakeTelegram) -> None:
    workers = [make_adapter(limits=Limits(**NO_BUCKETS)) for _ in range(2)]
    started = time.monotonic()
    for n in range(20):
        await workers[n % 2].send(out(f"m{n}", chat_id=GROUP_ID))
    assert time.monotonic() - started < 5  # the 20 go out at once
    request = SendMessage(chat_id=GROUP_ID, text="m20")
    with pytest.raises(ChannelRateLimited) as info:
        await workers[0].client.send_message(request, retry=False)
    assert info.value.retry_after > 50  # the 21st waits for the first to leave the window
    assert len(fake.texts(GROUP_ID)) == 20


async def test_window_paces_two_adapters_sharing_redis(make_adapter: MakeAdapter,
                                                       fake: FakeTelegram) -> None:
    limits = Limits(per_group=(3, 1.5), **NO_BUCKETS)
    workers = [make_adapter(limits=limits), make_adapter(limits=limits)]
    for n in range(5):
        await workers[n % 2].send(out(f"m{n}", chat_id=GROUP_ID))
    times = [c.at for c in fake.calls if c.method == "sendMessage"]
    assert len(times) == 5
    assert times[2] - times[0] < 0.5  # three at once...
    assert times[3] - times[0] >= 1.45  # ...then the 4th waits for a slot (a bucket would not)
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] >= 1.45  # never 4 in any 1.5 s
    assert fake.texts(GROUP_ID) == [f"m{n}" for n in range(5)]


async def test_private_chats_are_not_group_limited(make_adapter: MakeAdapter,
                                                   fake: FakeTelegram) -> None:
    adapter = make_adapter(limits=Limits(per_group=(1, 60.0), **NO_BUCKETS))
    started = time.monotonic()
    for n in range(3):
        await adapter.send(out(f"m{n}", chat_id=PRIVATE_ID))
    assert time.monotonic() - started < 1
    assert len(fake.texts(PRIVATE_ID)) == 3


async def test_stream_previews_skip_a_full_group_window(make_adapter: MakeAdapter,
                                                        fake: FakeTelegram) -> None:
    adapter = make_adapter(limits=Limits(per_group=(2, 30.0), **NO_BUCKETS))
    clock = with_clock(adapter)
    await adapter.send(out("someone else's answer", chat_id=GROUP_ID))
    stream = adapter.open_stream(out("", chat_id=GROUP_ID))
    assert stream is not None
    await stream.update("The")  # the last slot of the window
    clock.now += 20  # the group's interval is 30 s / 2 = 15 s
    started = time.monotonic()
    await stream.update("The answer")  # window full: skipped at once, not waited for
    assert time.monotonic() - started < 1
    assert fake.texts(GROUP_ID) == ["someone else's answer", "The"]
    assert fake.calls_to("editMessageText") == []
