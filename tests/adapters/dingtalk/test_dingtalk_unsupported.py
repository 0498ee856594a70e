"""Messages the bot cannot read (a file, a voice note without transcript, a card): a short
polite answer through the session webhook, once per msgId; or an event for the app."""

from __future__ import annotations

import pytest
from dingtalk_stream import AckMessage, CallbackMessage
from dingtalk_support import make_adapter, robot_message, signed_request
from fake_dingtalk import FakeDingTalk
from redis.asyncio import Redis
from test_dingtalk_stream import callback_frame

from adapters.dingtalk._stream import BotMessageHandler
from botcore.channel import Accepted
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage

DEFAULT = "抱歉，我暂时只能看懂文字消息，请用文字描述你的问题。"
FILE = {"downloadCode": "dc4", "fileName": "合同.pdf"}
VOICE_NO_TRANSCRIPT = {"downloadCode": "dc3", "duration": 3000}


def answers(fake: FakeDingTalk) -> list[str]:
    return [b["text"]["content"] for b in fake.bodies("/robot/sendBySession")]


@pytest.mark.parametrize(("msgtype", "content"), [
    ("file", FILE), ("audio", VOICE_NO_TRANSCRIPT), ("video", {"downloadCode": "d"}),
    ("interactiveCard", None),
])
async def test_unreadable_message_gets_one_polite_answer(
        redis: Redis, keys: KeyBuilder, msgtype: str, content: dict | None) -> None:  # type: ignore[type-arg]
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    request = signed_request(robot_message(msgtype, msg_id="f1", content=content))
    first = await adapter.handle_webhook(request)
    again = await adapter.handle_webhook(request)  # a replay or a redelivery
    await adapter.shutdown()  # lets the answers in flight finish
    assert first == again == Accepted(())  # nothing for the app, nothing queued
    assert answers(fake) == [DEFAULT]
    assert fake.bodies("/robot/sendBySession")[0]["msgtype"] == "text"


async def test_readable_messages_get_no_polite_answer(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    voice = robot_message("audio", msg_id="v1",
                          content={**VOICE_NO_TRANSCRIPT, "recognition": "你好"})
    for payload in (robot_message(msg_id="t1"), voice):
        outcome = await adapter.handle_webhook(signed_request(payload))
        assert isinstance(outcome, Accepted)
        assert outcome.messages[0].kind == "message"
    await adapter.shutdown()
    assert answers(fake) == []


async def test_configured_text_and_readable_types(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake, unsupported_text="Please type your question.",
                           readable_types=["text", "file"])
    file_msg = await adapter.handle_webhook(signed_request(
        robot_message("file", msg_id="f2", content=FILE)))
    assert isinstance(file_msg, Accepted)
    assert file_msg.messages[0].segments[-1].file_id == "dc4"  # the app reads files now
    rich = await adapter.handle_webhook(signed_request(
        robot_message("richText", msg_id="r2", content={"richText": [{"text": "hi"}]})))
    await adapter.shutdown()
    assert rich == Accepted(())
    assert answers(fake) == ["Please type your question."]


async def test_event_mode_hands_it_to_the_app_without_answering(
        redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake, unsupported="event")
    outcome = await adapter.handle_webhook(signed_request(
        robot_message("file", msg_id="f3", content=FILE)))
    await adapter.shutdown()
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert (msg.kind, msg.event_type, msg.event_data) == ("event", "unsupported",
                                                          {"msgtype": "file"})
    assert msg.segments[-1].file_id == "dc4"
    assert answers(fake) == []


async def test_stream_mode_answers_and_acks(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake, mode="stream")
    stored: list[InboundMessage] = []

    async def ingest(msg: InboundMessage) -> bool:
        stored.append(msg)
        return True

    handler = BotMessageHandler(adapter.parse, ingest)
    frame = CallbackMessage.from_dict(callback_frame(
        robot_message("file", msg_id="s1", content=FILE)))
    acks = [await handler.raw_process(frame) for _ in range(2)]
    await adapter.shutdown()
    assert [a.code for a in acks] == [AckMessage.STATUS_OK] * 2
    assert stored == []
    assert answers(fake) == [DEFAULT]


async def test_failed_polite_answer_is_logged_and_may_be_retried(
        redis: Redis, keys: KeyBuilder, caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeDingTalk(fail_calls={1: 400})
    adapter = make_adapter(redis, keys, fake)
    request = signed_request(robot_message("file", msg_id="f4", content=FILE))
    await adapter.handle_webhook(request)
    await adapter.shutdown()
    assert "f4" in caplog.text
    assert "合同" not in caplog.text
    await adapter.handle_webhook(request)  # the redelivery tries again
    await adapter.shutdown()
    assert answers(fake) == [DEFAULT, DEFAULT]
