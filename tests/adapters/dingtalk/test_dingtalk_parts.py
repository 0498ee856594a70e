"""Split replies: each part is recorded in the delivery ledger, a re-run sends only the rest."""

from __future__ import annotations

import json
import time

import pytest
from dingtalk_support import API_BASE, make_adapter
from fake_dingtalk import FakeDingTalk
from redis.asyncio import Redis

from botcore.errors import ChannelApiError, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.ledger import DeliveryLedger
from botcore.message import ConversationKey, OutboundMessage, Segment

WEBHOOK = f"{API_BASE}/robot/sendBySession?session=s1"
IMAGES = (Segment(type="image", url="https://img.example/1.png"),
          Segment(type="image", url="https://img.example/2.png"))


def reply(*, webhook: bool, key: str = "turn-1:0") -> OutboundMessage:
    ctx = {"conversationId": "cidGroup==", "conversationType": "2",
           "senderStaffId": "staff001"}
    if webhook:
        ctx |= {"sessionWebhook": WEBHOOK,
                "sessionWebhookExpiredTime": int((time.time() + 3600) * 1000)}
    return OutboundMessage(conversation=ConversationKey(channel="dingtalk", bot_id="b1",
                                                        chat_id="cidGroup=="),
                           context=ctx, text="长回答", attachments=IMAGES,
                           idempotency_key=key)


def sent(fake: FakeDingTalk, path: str) -> list[str]:
    """What each call on ``path`` carried: the text, or the image URL."""
    out = []
    for body in fake.bodies(path):
        if "msgParam" in body:
            param = json.loads(body["msgParam"])
            out.append(param.get("content") or param.get("photoURL"))
        elif body["msgtype"] == "text":
            out.append(body["text"]["content"])
        else:
            out.append(body["markdown"]["text"])
    return out


async def test_rerun_after_part_two_failed_sends_only_the_rest(redis: Redis,
                                                                keys: KeyBuilder) -> None:
    fake = FakeDingTalk(fail_calls={2: 503})  # the session webhook fails on part 2
    adapter = make_adapter(redis, keys, fake)
    with pytest.raises(ChannelUnavailable):
        await adapter.send(reply(webhook=True))
    result = await adapter.send(reply(webhook=True))  # the turn is re-run
    assert sent(fake, "/robot/sendBySession") == [
        "长回答", "![image](https://img.example/1.png)",  # part 2 failed
        "![image](https://img.example/1.png)", "![image](https://img.example/2.png)"]
    assert (result.parts, result.extra["via"]) == (3, "sessionWebhook")
    again = await adapter.send(reply(webhook=True))  # a third run sends nothing
    assert len(fake.bodies("/robot/sendBySession")) == 4
    assert again.parts == 3


async def test_openapi_rerun_keeps_the_first_parts_id(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk(fail_calls={3: 400})  # token, part 1, then part 2 refused
    adapter = make_adapter(redis, keys, fake)
    with pytest.raises(ChannelApiError):
        await adapter.send(reply(webhook=False))
    result = await adapter.send(reply(webhook=False))
    path = "/v1.0/robot/groupMessages/send"
    assert sent(fake, path) == ["长回答", "https://img.example/1.png",
                                "https://img.example/1.png", "https://img.example/2.png"]
    assert result.extra["via"] == "openapi"
    async def must_not_send() -> str:
        raise AssertionError("part 1 is recorded")

    record = await DeliveryLedger(redis, keys, "dingtalk").part("turn-1:0", 0, must_not_send)
    assert record == f"openapi:{result.message_id}"  # part 1's processQueryKey
    assert result.message_id


async def test_without_idempotency_key_every_run_sends_everything(redis: Redis,
                                                                   keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    await adapter.send(reply(webhook=True, key=""))
    await adapter.send(reply(webhook=True, key=""))
    assert len(fake.bodies("/robot/sendBySession")) == 6


async def test_rerun_of_a_streamed_card_writes_into_the_same_card(redis: Redis,
                                                                   keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake, card_template_id="tpl.schema")
    first = adapter.open_stream(reply(webhook=True))
    assert first is not None
    await first.update("半")  # then the worker dies
    second = adapter.open_stream(reply(webhook=True))  # the turn is re-run
    assert second is not None
    await second.finish("完整的回答")
    assert len(fake.bodies("/v1.0/card/instances/createAndDeliver")) == 1
    assert {b["outTrackId"] for b in fake.bodies("/v1.0/card/streaming")} == {"turn-1:0"}
