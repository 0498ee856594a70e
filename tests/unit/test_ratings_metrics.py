"""Ratings reach /metrics: widget 👍/👎 and handoff satisfaction, counted once per answer
(a changed rating moves its count). Real Redis."""

from __future__ import annotations

import re

from redis.asyncio import Redis

from botcore.handoff import HandoffDesk
from botcore.keys import KeyBuilder
from botcore.metrics import WebMetrics, record_rating, stored_rating
from botcore.testing import make_inbound


def _ratings(text: str) -> dict[tuple[str, str, str], float]:
    found = re.findall(r'botcore_ratings\{bot="([^"]+)",kind="([^"]+)",rating="([^"]+)"\} '
                       r"([0-9.e+-]+)", text)
    return {(kind, bot, rating): float(v) for bot, kind, rating, v in found}


async def test_widget_ratings_are_counted_once_and_moved(redis: Redis,
                                                         keys: KeyBuilder) -> None:
    await record_rating(redis, keys, kind="widget", bot_id="shop", rating="up")
    await record_rating(redis, keys, kind="widget", bot_id="shop", rating="up", previous="up")
    await record_rating(redis, keys, kind="widget", bot_id="shop", rating="down",
                        previous="up")
    await record_rating(redis, keys, kind="widget", bot_id="shop", rating="up")
    text = (await WebMetrics().render(redis, keys)).decode()
    assert _ratings(text) == {("widget", "shop", "up"): 1.0, ("widget", "shop", "down"): 1.0}


async def test_handoff_satisfaction_reaches_metrics(redis: Redis, keys: KeyBuilder) -> None:
    desk = HandoffDesk(redis, keys)
    first = make_inbound("5", bot_id="cs", chat_id="c1")
    await desk.rate(first, 5)
    await desk.rate(first, 4)            # the same answer re-rated: moved, not added
    await desk.rate(make_inbound("2", bot_id="cs", chat_id="c2"), 2)
    counts = _ratings((await WebMetrics().render(redis, keys)).decode())
    assert counts[("handoff", "cs", "4")] == 1.0
    assert counts[("handoff", "cs", "2")] == 1.0
    assert counts.get(("handoff", "cs", "5"), 0.0) == 0.0


def test_stored_rating_reads_what_set_get_returns() -> None:
    assert stored_rating(b'{"rating": "up"}') == "up"
    assert stored_rating('{"rating": 3}') == "3"
    assert stored_rating(None) is None
    assert stored_rating(b"not json") is None
