"""Per-member limits of message/send (30 a minute, 1000 an hour per member and app), exact
windows shared through Redis by every adapter instance; the clock is simulated."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fake_wecom import FakeWeCom
from wecom_testkit import app_options

from adapters.wecom import WeComAdapter
from botcore import outbound
from botcore.errors import ChannelRateLimited
from botcore.message import ConversationKey, OutboundMessage

Make = Callable[..., WeComAdapter]
CONV = ConversationKey(channel="wecom", bot_id="wc", chat_id="zhangsan")


class SimClock:
    """Stands in for ``time`` and ``asyncio`` inside botcore.outbound: sleeping moves it."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimClock:
    sim = SimClock()
    monkeypatch.setattr(outbound, "time", sim)
    monkeypatch.setattr(outbound, "asyncio", sim)
    return sim


def _to(user: str, text: str) -> OutboundMessage:
    return OutboundMessage(conversation=CONV, text=text, context={"mode": "app", "touser": user})


async def test_31st_message_to_a_member_waits_across_two_adapters(
        make_adapter: Make, fake: FakeWeCom, clock: SimClock) -> None:
    one, two = (make_adapter(app_options(rate_limit_wait=120)) for _ in range(2))  # 2 workers
    for i in range(30):
        await (one, two)[i % 2].send(_to("zhangsan", f"m{i}"))
        clock.now += 0.5  # 30 messages in 15 s: a bucket of rate 0.5/s would let more through
    await one.send(_to("lisi", "another member has their own windows"))
    assert clock.slept == []
    await two.send(_to("zhangsan", "m30"))  # the 31st within a minute
    assert len(clock.slept) == 1
    assert 60 - 15 <= clock.slept[0] <= 60 - 14.5 + 0.01  # until the first one is 60 s old
    assert [m["text"]["content"] for m in fake.sent if m["touser"] == "zhangsan"] == \
        [f"m{i}" for i in range(31)]


async def test_over_the_wait_budget_raises_rate_limited_and_sends_nothing(
        make_adapter: Make, fake: FakeWeCom, clock: SimClock) -> None:
    one, two = make_adapter(app_options()), make_adapter(app_options())  # wait budget 30 s
    for i in range(30):
        await (one, two)[i % 2].send(_to("zhangsan", f"m{i}"))
    with pytest.raises(ChannelRateLimited) as info:
        await one.send(_to("zhangsan", "m30"))
    assert 59 <= info.value.retry_after <= 60.01
    assert len(fake.sent) == 30


async def test_the_hour_window_is_enforced_too(make_adapter: Make, fake: FakeWeCom,
                                              clock: SimClock) -> None:
    adapter = make_adapter(app_options(member_limits=[[3, 60], [5, 3600]],
                                       rate_limit_wait=3600))
    for i in range(6):
        await adapter.send(_to("zhangsan", f"m{i}"))
    # m3 waits for the minute window; m5 for the hour window (5 sent since t0)
    assert [round(s) for s in clock.slept] == [60, 3540]
    assert len(fake.sent) == 6


def test_default_windows_are_wecoms(make_adapter: Make) -> None:
    client = make_adapter(app_options()).client
    assert client is not None
    assert client.limiter.windows == ((30, 60.0), (1000, 3600.0))


async def test_each_member_of_a_multi_user_touser_is_counted(
        make_adapter: Make, fake: FakeWeCom, clock: SimClock) -> None:
    adapter = make_adapter(app_options(member_limits=[[2, 60]], rate_limit_wait=0))
    await adapter.send(_to("zhangsan", "a"))
    await adapter.send(_to("lisi|zhangsan", "b"))
    with pytest.raises(ChannelRateLimited):
        await adapter.send(_to("zhangsan", "c"))
    assert len(fake.sent) == 2
