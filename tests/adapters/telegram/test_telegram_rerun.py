"""A turn re-run (same idempotency key): parts of a split reply go out once
(DeliveryLedger.part)."""

from __future__ import annotations

from typing import Any

import pytest
from fake_telegram import ApiError, FakeTelegram
from redis.asyncio import Redis
from test_telegram_send import PRIVATE_ID, out

from adapters.telegram import TelegramAdapter
from adapters.telegram.errors import TelegramApiError
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
