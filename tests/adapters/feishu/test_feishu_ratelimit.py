"""The per-chat limit (5 messages a second) holds exactly, across workers."""

from __future__ import annotations

import asyncio
import time

from fake_feishu import FakeFeishu
from feishu_helpers import MakeAdapter

from botcore.message import ConversationKey, OutboundMessage

CONV = ConversationKey(channel="feishu", bot_id="fs", chat_id="oc_busy")


async def test_five_per_second_across_two_limiters(make_adapter: MakeAdapter) -> None:
    one, two = make_adapter().client.limiter, make_adapter().client.limiter
    assert one is not two
    waits = [await (one if i % 2 else two).reserve("oc_busy") for i in range(7)]
    assert waits[:5] == [0.0] * 5
    assert all(0 < wait <= 1.0 for wait in waits[5:])  # no burst on top of the rate
    assert await one.reserve("oc_other") == 0.0  # per chat


async def test_sends_from_two_workers_stay_under_the_limit(make_adapter: MakeAdapter,
                                                           fake: FakeFeishu) -> None:
    workers = [make_adapter(), make_adapter()]
    await workers[0].client.tokens.get()
    done: list[float] = []

    async def send(i: int) -> None:
        await workers[i % 2].send(OutboundMessage(conversation=CONV, text=f"m{i}",
                                                  idempotency_key=f"k{i}"))
        done.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(send(i) for i in range(7)))
    assert len(fake.messages) == 7
    done.sort()
    assert done[4] - started < 0.5  # the first five go at once
    assert done[5] - started >= 0.95  # the sixth waits for the window to move
