"""A streamed answer whose turn is re-run continues the card the user already sees."""

from __future__ import annotations

import pytest
from fake_feishu import FakeFeishu
from feishu_helpers import MakeAdapter

from adapters.feishu._stream import CardStream
from botcore.errors import ChannelUnavailable
from botcore.message import ConversationKey, OutboundMessage

CONV = ConversationKey(channel="feishu", bot_id="fs", chat_id="oc_chat")
CONTEXT = {"chat_id": "oc_chat", "message_id": "om_in", "receive_id_type": "chat_id"}
KEY = OutboundMessage.make_key("ev-rerun", 0)


def _stream(adapter: object, key: str = KEY) -> CardStream:
    message = OutboundMessage(conversation=CONV, idempotency_key=key, context=CONTEXT)
    stream = adapter.open_stream(message)  # type: ignore[attr-defined]
    assert isinstance(stream, CardStream)
    ticks = iter(float(t) for t in range(1000))
    stream._clock = lambda: next(ticks)  # one second per call: never coalesced
    return stream


async def test_rerun_after_failed_update_finishes_the_same_card(
        make_adapter: MakeAdapter, fake: FakeFeishu, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _stream(make_adapter())
    await first.update("The answer")
    await first.update("The answer is")
    fake.fail_card_updates = 100  # the next update fails for good: the turn errors out
    monkeypatch.setattr("adapters.feishu._stream.send_with_retry", _no_retry)
    with pytest.raises(ChannelUnavailable):
        await first.finish("The answer is 42")
    monkeypatch.undo()
    fake.fail_card_updates = 0

    second = _stream(make_adapter())  # the re-run: another worker, same idempotency key
    await second.update("The answer")
    result = await second.finish("The answer is 42, really.")

    (card_id, card), = fake.cards.items()  # only one card was ever created
    (msg,) = fake.messages  # the user's single message shows it
    assert msg["content"] == {"type": "card", "data": {"card_id": card_id}}
    assert result.message_id == msg["message_id"]
    assert card["contents"][-1] == "The answer is 42, really."
    assert card["streaming_mode"] is False
    assert card["sequences"] == sorted(set(card["sequences"]))  # always increasing


async def test_rerun_after_crash_mid_stream(make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    crashed = _stream(make_adapter())
    await crashed.update("partial")  # then the worker dies: no finish
    rerun = _stream(make_adapter())
    await rerun.finish("complete answer")
    (card,) = fake.cards.values()
    assert len(fake.messages) == 1
    assert card["contents"] == ["partial", "complete answer"]
    assert card["streaming_mode"] is False


async def test_rerun_of_a_finished_stream_streams_into_it_again(
        make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    await _stream(make_adapter()).finish("first run")
    await _stream(make_adapter()).finish("second run")
    (card,) = fake.cards.values()
    assert len(fake.messages) == 1
    assert card["contents"][-1] == "second run"
    assert card["streaming_mode"] is False


async def test_different_replies_get_different_cards(make_adapter: MakeAdapter,
                                                     fake: FakeFeishu) -> None:
    adapter = make_adapter()
    await _stream(adapter, "key-a").finish("a")
    await _stream(adapter, "key-b").finish("b")
    assert len(fake.cards) == 2
    assert len(fake.messages) == 2


async def _no_retry(call):  # type: ignore[no-untyped-def]
    return await call()
