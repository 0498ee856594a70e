"""The drain loop in-process on a real Redis, with a fake turn function."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis

from botcore.ingress.drain import Drainer, merge_envelopes
from botcore.ingress.inbox import Envelope, Inbox
from botcore.keys import KeyBuilder
from botcore.settings import IngressSettings
from botcore.testing import make_inbound

CONV = "web:bot:chat-1"


class _Turns:
    """Records turns; fails for texts starting with 'boom'; optional hooks per text."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.attempts: list[int] = []
        self.apologies: list[tuple[str, BaseException | None]] = []
        self.before: dict[str, Any] = {}

    async def run(self, entries: list[Envelope], attempt: int) -> None:
        texts = [entry.message.text for entry in entries]
        self.batches.append(texts)
        self.attempts.append(attempt)
        hook = self.before.get(texts[0])
        if hook is not None:
            await hook()
        if texts[0].startswith("boom"):
            raise RuntimeError(f"failed: {texts[0]}")

    async def apologize(self, entry: Envelope, exc: BaseException | None) -> None:
        self.apologies.append((entry.message.text, exc))


def _drainer(redis: Redis, keys: KeyBuilder, turns: _Turns, **settings: Any) -> Drainer:
    inbox = Inbox(redis, keys)
    return Drainer(inbox, IngressSettings(**settings), turns.run, turns.apologize)


async def _admit(drainer: Drainer, *texts: str, sender: str = "user-1") -> None:
    for text in texts:
        await drainer.inbox.admit(make_inbound(text, sender=sender))


async def test_drain_keeps_order_and_cleans_up(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns)
    await _admit(drainer, *[f"m{i}" for i in range(6)])
    stats = await drainer.drain(CONV)
    assert turns.batches == [[f"m{i}"] for i in range(6)]
    assert turns.attempts == [1] * 6
    assert (stats.turns, stats.failures, stats.dead_letters, stats.lease_lost) == (6, 0, 0, False)
    assert await redis.llen(keys.inbox(CONV)) == 0
    assert not await redis.exists(keys.lease(CONV))
    assert not await redis.exists(keys.scheduled(CONV))
    assert not await redis.sismember(keys.dirty(), CONV)
    assert await redis.keys(keys.attempts(CONV, "*")) == []


async def test_drain_of_empty_inbox(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    stats = await _drainer(redis, keys, turns).drain(CONV)
    assert stats.turns == 0
    assert turns.batches == []
    assert not await redis.exists(keys.lease(CONV))


async def test_merge_window_merges_one_senders_lines(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, merge_window=0.2, max_merge=5)
    await _admit(drainer, "hello", "I have a question", sender="u1")
    await _admit(drainer, "me too", sender="u2")
    await _admit(drainer, "again", sender="u1")
    stats = await drainer.drain(CONV)
    assert turns.batches == [["hello", "I have a question"], ["me too"], ["again"]]
    assert stats.turns == 3
    assert await redis.llen(keys.inbox(CONV)) == 0


async def test_merge_window_picks_up_lines_typed_while_waiting(redis: Redis,
                                                               keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, merge_window=0.3)
    await _admit(drainer, "first")
    task = asyncio.create_task(drainer.drain(CONV))
    await asyncio.sleep(0.1)
    await _admit(drainer, "second")
    await task
    assert turns.batches == [["first", "second"]]


async def test_merge_window_is_a_debounce(redis: Redis, keys: KeyBuilder) -> None:
    """Each new line restarts the quiet period: three lines 0.25 s apart with a 0.4 s window
    are one turn (a window counted from the first line would have cut after two)."""
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, merge_window=0.4)
    await _admit(drainer, "I ordered")
    task = asyncio.create_task(drainer.drain(CONV))
    await asyncio.sleep(0.25)
    await _admit(drainer, "a blue shirt")
    await asyncio.sleep(0.25)
    await _admit(drainer, "and it is red")
    await task
    assert turns.batches == [["I ordered", "a blue shirt", "and it is red"]]


async def test_non_stop_typing_is_answered_after_the_cap(redis: Redis,
                                                         keys: KeyBuilder) -> None:
    """Lines every 0.1 s with a 0.2 s window: the turn starts by 4 windows after the first
    line, not when the typing stops."""
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, merge_window=0.2, max_merge=50)
    await _admit(drainer, "line 0")
    task = asyncio.create_task(drainer.drain(CONV))
    for n in range(1, 15):
        await asyncio.sleep(0.1)
        await _admit(drainer, f"line {n}")
    await task
    await drainer.drain(CONV)   # lines admitted after that drain ended (a new drain's job)
    assert 1 < len(turns.batches[0]) < 15
    assert sum(len(b) for b in turns.batches) == 15


async def test_merge_respects_max_merge(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, merge_window=0.05, max_merge=2)
    await _admit(drainer, "a", "b", "c")
    await drainer.drain(CONV)
    assert turns.batches == [["a", "b"], ["c"]]


async def test_merge_envelopes_stops_at_events_and_other_senders() -> None:
    def env(text: str, sender: str = "u1", **fields: Any) -> Envelope:
        return Envelope.wrap(make_inbound(text, sender=sender, **fields))

    entries = [env("a"), env("b"), env("", kind="event", event_type="x"), env("c")]
    assert [e.message.text for e in merge_envelopes(entries, 5)] == ["a", "b"]
    assert len(merge_envelopes([env("", kind="event", event_type="x"), env("a")], 5)) == 1
    assert [e.message.text for e in merge_envelopes([env("a"), env("b", "u2")], 5)] == ["a"]


async def test_no_merge_without_window(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns)
    await _admit(drainer, "a", "b")
    await drainer.drain(CONV)
    assert turns.batches == [["a"], ["b"]]


async def test_failing_turn_retried_then_dead_lettered(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, max_attempts=3)
    await _admit(drainer, "before", "boom!", "after")
    stats = await drainer.drain(CONV)
    assert turns.batches == [["before"], ["boom!"], ["boom!"], ["boom!"], ["after"]]
    assert turns.attempts == [1, 1, 2, 3, 1]
    assert (stats.turns, stats.failures, stats.dead_letters) == (2, 3, 1)
    assert len(turns.apologies) == 1
    text, exc = turns.apologies[0]
    assert text == "boom!"
    assert isinstance(exc, RuntimeError)
    dead = await drainer.inbox.dead_letters()
    assert len(dead) == 1
    assert dead[0]["entry"]["message"]["text"] == "boom!"
    assert dead[0]["attempts"] == 3
    assert dead[0]["error"] == "RuntimeError: failed: boom!"
    assert await redis.llen(keys.inbox(CONV)) == 0
    assert await redis.keys(keys.attempts(CONV, "*")) == []


async def test_turn_succeeding_on_retry(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("transient")

    turns.before["flaky"] = flaky
    drainer = _drainer(redis, keys, turns)
    await _admit(drainer, "flaky")
    stats = await drainer.drain(CONV)
    assert turns.attempts == [1, 2]
    assert (stats.turns, stats.failures, stats.dead_letters) == (1, 1, 0)
    assert turns.apologies == []


async def test_apology_failure_still_dead_letters(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()

    async def broken_apology(entry: Envelope, exc: BaseException | None) -> None:
        raise RuntimeError("channel down")

    drainer = Drainer(Inbox(redis, keys), IngressSettings(max_attempts=1), turns.run,
                      broken_apology)
    await _admit(drainer, "boom", "next")
    stats = await drainer.drain(CONV)
    assert stats.dead_letters == 1
    assert turns.batches == [["boom"], ["next"]]


async def test_worker_died_during_turn_is_dead_lettered(redis: Redis,
                                                        keys: KeyBuilder) -> None:
    """A head whose turn was cut short by dying workers max_crashes times is not run again:
    it goes to the dead letters with an apology (a message that kills every worker)."""
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, max_crashes=2)
    await _admit(drainer, "poison", "fine")
    head = Envelope.model_validate_json((await drainer.inbox.head(CONV))[0])
    await redis.hset(keys.attempts(CONV, head.id), mapping={"starts": 2, "failures": 0})
    stats = await drainer.drain(CONV)
    assert turns.batches == [["fine"]]
    assert turns.apologies == [("poison", None)]
    assert stats.dead_letters == 1
    assert (await drainer.inbox.dead_letters())[0]["error"] == (
        "the worker died during this turn 2 times")


async def test_crashes_do_not_use_up_the_failure_attempts(redis: Redis,
                                                          keys: KeyBuilder) -> None:
    """Workers killed during a turn (chaos, deploys) are not handler failures: the message
    is still run, and answered, after more crashes than max_attempts."""
    turns = _Turns()
    drainer = _drainer(redis, keys, turns, max_attempts=2, max_crashes=8)
    await _admit(drainer, "survivor")
    head = Envelope.model_validate_json((await drainer.inbox.head(CONV))[0])
    await redis.hset(keys.attempts(CONV, head.id), mapping={"starts": 5, "failures": 1})
    stats = await drainer.drain(CONV)
    assert turns.batches == [["survivor"]]
    assert turns.attempts == [6]
    assert (stats.turns, stats.dead_letters) == (1, 0)


async def test_lease_lost_stops_the_drain(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()

    async def steal_lease() -> None:  # our lease expired and another drain took it
        await redis.set(keys.lease(CONV), "999999")

    turns.before["m1"] = steal_lease
    drainer = _drainer(redis, keys, turns)
    await _admit(drainer, "m0", "m1", "m2")
    stats = await drainer.drain(CONV)
    assert stats.lease_lost is True
    assert turns.batches == [["m0"], ["m1"]]
    remaining = [Envelope.model_validate_json(r).message.text
                 for r in await drainer.inbox.head(CONV, 5)]
    assert remaining == ["m1", "m2"]  # not popped: the new holder runs it
    assert await redis.get(keys.lease(CONV)) == b"999999"


async def test_lease_renewed_during_a_long_turn(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()

    async def slow() -> None:
        await asyncio.sleep(1.0)

    turns.before["slow"] = slow
    drainer = _drainer(redis, keys, turns, lease_ttl=0.6)
    await _admit(drainer, "slow", "next")
    stats = await drainer.drain(CONV)
    assert stats.lease_lost is False
    assert turns.batches == [["slow"], ["next"]]
    assert await redis.llen(keys.inbox(CONV)) == 0


async def test_second_concurrent_drain_returns_at_once(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def hold() -> None:
        entered.set()
        await gate.wait()

    turns.before["m0"] = hold
    drainer = _drainer(redis, keys, turns)
    await _admit(drainer, "m0", "m1")
    first = asyncio.create_task(drainer.drain(CONV))
    await asyncio.wait_for(entered.wait(), 5)
    second = await asyncio.wait_for(drainer.drain(CONV), 2)
    assert second.turns == 0
    assert turns.batches == [["m0"]]
    gate.set()
    stats = await first
    assert stats.turns == 2
    assert turns.batches == [["m0"], ["m1"]]


async def test_message_admitted_during_drain_is_drained(redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()
    drainer = _drainer(redis, keys, turns)

    async def more() -> None:
        await _admit(drainer, "late")

    turns.before["m0"] = more
    await _admit(drainer, "m0")
    await drainer.drain(CONV)
    assert turns.batches == [["m0"], ["late"]]


@pytest.mark.parametrize("position", [0, 1])
async def test_unreadable_entry_dead_lettered_alone(redis: Redis, keys: KeyBuilder,
                                                    position: int) -> None:
    """A corrupt entry goes to the dead letters; the valid messages around it still run."""
    turns = _Turns()
    drainer = _drainer(redis, keys, turns)
    await _admit(drainer, "good 1", "good 2")
    await redis.linsert(keys.inbox(CONV), "BEFORE" if position == 0 else "AFTER",
                        (await drainer.inbox.head(CONV))[0], b"not json at all")
    stats = await drainer.drain(CONV)
    assert turns.batches == [["good 1"], ["good 2"]]
    assert stats.dead_letters == 1
    dead = await drainer.inbox.dead_letters()
    assert len(dead) == 1
    assert dead[0]["error"].startswith("unreadable entry")
    assert await redis.llen(keys.inbox(CONV)) == 0


async def test_a_turn_over_its_time_limit_fails_and_is_dead_lettered(
        redis: Redis, keys: KeyBuilder) -> None:
    turns = _Turns()

    async def hang() -> None:
        await asyncio.sleep(3600)
    turns.before["hangs"] = hang
    drainer = Drainer(Inbox(redis, keys), IngressSettings(max_attempts=2), turns.run,
                      turns.apologize, turn_timeout=0.05)
    await _admit(drainer, "hangs", "next")
    stats = await drainer.drain(CONV)
    assert turns.batches == [["hangs"], ["hangs"], ["next"]]
    assert (stats.failures, stats.dead_letters) == (2, 1)
    assert [(text, type(exc).__name__) for text, exc in turns.apologies] == [
        ("hangs", "TimeoutError")]


async def test_dead_letter_keeps_the_error_without_secrets(redis: Redis,
                                                           keys: KeyBuilder) -> None:
    turns = _Turns()

    async def leak() -> None:
        raise RuntimeError("502 from https://api.telegram.org/bot42:SECRETtoken/sendMessage "
                           "?access_token=abc")

    turns.before["bad"] = leak
    drainer = _drainer(redis, keys, turns, max_attempts=1)
    await _admit(drainer, "bad")
    await drainer.drain(CONV)
    (record,) = await drainer.inbox.dead_letters()
    assert "RuntimeError: 502 from" in record["error"]
    assert "SECRETtoken" not in record["error"]
    assert "abc" not in record["error"]
    assert "/bot***/sendMessage" in record["error"]
