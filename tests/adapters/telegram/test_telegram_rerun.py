"""A turn re-run (same idempotency key) continues what the user already sees: parts of a
split reply go out once (DeliveryLedger.part), a streamed group reply keeps editing the same
message (DeliveryLedger stream handles), a private draft stream ends in one message."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import MakeAdapter
from fake_telegram import ApiError, FakeTelegram
from redis.asyncio import Redis
from test_telegram_send import GROUP_ID, PRIVATE_ID, out
from test_telegram_stream import with_clock

from adapters.telegram import TelegramAdapter
from adapters.telegram._stream import EditStream
from adapters.telegram.errors import TelegramApiError
from botcore.errors import ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.ledger import DeliveryLedger


def fail_call(fake: FakeTelegram, method: str, number: int) -> None:
    """Make the ``number``-th call (1-based, counting all so far) to ``method`` a 403."""
    original = getattr(fake, f"_m_{method}")

    async def flaky(params: dict[str, Any]) -> Any:
        if len(fake.calls_to(method)) == number:
            raise ApiError(403, "Forbidden: bot was kicked from the group chat")
        return await original(params)

    setattr(fake, f"_m_{method}", flaky)


def ledger(redis: Redis, keys: KeyBuilder) -> DeliveryLedger:
    return DeliveryLedger(redis, keys, "telegram")


# --- parts ----------------------------------------------------------------------------------


async def test_parts_are_kept_in_the_delivery_ledger(adapter: TelegramAdapter,
                                                     fake: FakeTelegram, redis: Redis,
                                                     keys: KeyBuilder) -> None:
    async def earlier_run() -> str:
        return "555"

    await ledger(redis, keys).part("evt-2:0", 0, earlier_run)  # part 0 already in the chat
    result = await adapter.send(out("p1\n\n" + "z" * 4100, idempotency_key="evt-2:0"))
    assert len(fake.calls_to("sendMessage")) == 2  # parts 1 and 2 only
    assert result.extra["message_ids"][0] == 555
    assert await ledger(redis, keys).delivered_parts("evt-2:0", 3) == 3


async def test_half_sent_reply_rerun_sends_the_rest(adapter: TelegramAdapter,
                                                    fake: FakeTelegram) -> None:
    message = out("p1\n\n" + "z" * 4100, idempotency_key="evt-3:0")
    fail_call(fake, "sendMessage", 2)
    with pytest.raises(TelegramApiError):
        await adapter.send(message)
    result = await adapter.send(message)
    assert result.parts == 3
    assert len(fake.texts(PRIVATE_ID)) == 3
    assert len(fake.calls_to("sendMessage")) == 4  # 1 ok + 1 failed, then the 2 left


async def test_rerun_after_migration_goes_to_the_supergroup(adapter: TelegramAdapter,
                                                            fake: FakeTelegram) -> None:
    fake.migrate(-4001, -1004001)
    message = out("a\n\n" + "b" * 4100, chat_id=-4001, idempotency_key="evt-4:0")
    fail_call(fake, "sendMessage", 3)  # -4001 (migrated), part 0 ok, part 1 fails
    with pytest.raises(TelegramApiError):
        await adapter.send(message)
    before = len(fake.calls_to("sendMessage"))
    result = await adapter.send(message)
    rerun = [c["chat_id"] for c in fake.calls_to("sendMessage")[before:]]
    assert rerun == [-1004001, -1004001]  # no second round trip to the old id
    assert result.extra["migrated_to_chat_id"] == -1004001
    assert result.parts == 3
    assert len(fake.texts(-1004001)) == 3


# --- streams --------------------------------------------------------------------------------


async def test_group_stream_rerun_edits_the_same_message(make_adapter: MakeAdapter,
                                                         fake: FakeTelegram) -> None:
    key = "evt-5:0"
    first = make_adapter()
    clock = with_clock(first)
    stream = first.open_stream(out("", chat_id=GROUP_ID, idempotency_key=key))
    assert isinstance(stream, EditStream)
    await stream.update("The answer")
    clock.now += 2
    fake.fail_next("editMessageText", 500)
    with pytest.raises(ChannelUnavailable):
        await stream.update("The answer is")  # the turn fails here
    assert fake.texts(GROUP_ID) == ["The answer"]

    second = make_adapter()  # e.g. another worker re-runs the turn
    clock = with_clock(second)
    again = second.open_stream(out("", chat_id=GROUP_ID, idempotency_key=key))
    assert again is not None
    edits_before = len(fake.calls_to("editMessageText"))
    await again.update("The")  # already shown (a prefix): no edit, no new message
    clock.now += 2
    await again.update("The answer is")
    result = await again.finish("The answer is 42.")
    assert fake.texts(GROUP_ID) == ["The answer is 42."]
    assert len(fake.calls_to("sendMessage")) == 1
    edits = [e["text"] for e in fake.calls_to("editMessageText")[edits_before:]]
    assert edits == ["The answer is", "The answer is 42."]
    assert result.parts == 1


async def test_rerun_of_a_finished_stream_sends_nothing_new(adapter: TelegramAdapter,
                                                            fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    message = out("", chat_id=GROUP_ID, idempotency_key="evt-6:0")
    stream = adapter.open_stream(message)
    assert stream is not None
    await stream.update("Done")
    await stream.finish("Done.")  # then the worker dies before the reply is marked sent
    again = adapter.open_stream(message)
    assert again is not None
    clock.now += 2
    await again.update("Do")
    clock.now += 2
    await again.update("Done.")
    await again.finish("Done.")
    assert fake.texts(GROUP_ID) == ["Done."]
    assert len(fake.calls_to("sendMessage")) == 1
    assert [e["text"] for e in fake.calls_to("editMessageText")] == ["Done."]


async def test_shorter_rerun_deletes_the_extra_message(adapter: TelegramAdapter,
                                                       fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    message = out("", chat_id=GROUP_ID, idempotency_key="evt-7:0")
    stream = adapter.open_stream(message)
    assert stream is not None
    long_text = "First. " * 600 + "\n\n" + "Second. " * 100
    await stream.update(long_text)
    assert len(fake.texts(GROUP_ID)) == 2  # the first run fails after this
    again = adapter.open_stream(message)
    assert again is not None
    clock.now += 2
    result = await again.finish("Short this time.")
    assert fake.texts(GROUP_ID) == ["Short this time."]
    assert len(fake.calls_to("deleteMessage")) == 1
    assert result.parts == 1


async def test_rerun_after_a_whole_send_does_not_stream_again(adapter: TelegramAdapter,
                                                              fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    message = out("", chat_id=GROUP_ID, idempotency_key="evt-8:0")
    stream = adapter.open_stream(message)
    assert stream is not None
    await stream.finish("Sent whole, no previews.")  # via send(); then the turn fails
    again = adapter.open_stream(message)
    assert again is not None
    await again.update("Sent")
    clock.now += 2
    await again.finish("Sent whole, no previews.")
    assert fake.texts(GROUP_ID) == ["Sent whole, no previews."]
    assert len(fake.calls_to("sendMessage")) == 1


async def test_private_draft_stream_rerun_ends_in_one_message(make_adapter: MakeAdapter,
                                                              fake: FakeTelegram) -> None:
    message = out("", idempotency_key="evt-10:0")
    first = make_adapter()
    with_clock(first)
    stream = first.open_stream(message)
    assert stream is not None
    await stream.update("Hel")
    await stream.finish("Hello!")  # delivered; the turn then fails before it is recorded
    second = make_adapter()
    clock = with_clock(second)
    again = second.open_stream(message)
    assert again is not None
    clock.now += 2
    await again.update("Hello")
    await again.finish("Hello!")
    drafts = fake.calls_to("sendMessageDraft")
    assert len({d["draft_id"] for d in drafts}) == 1  # the re-run animates the same draft
    assert fake.texts(PRIVATE_ID) == ["Hello!"]
    assert len(fake.calls_to("sendMessage")) == 1
