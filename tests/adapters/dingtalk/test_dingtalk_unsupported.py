"""Messages the bot cannot read (a file, a voice note without transcript, a card): an
``unsupported`` event that goes through the durable pipeline carrying the polite answer
(``unsupported = "reply"``), or an event for the app alone (``"event"``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

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
from botcore.testing.serve import serve_in_thread
from botcore.testing.stack import BotStack, wait_until

DEFAULT = "抱歉，我暂时只能看懂文字消息，请用文字描述你的问题。"
FILE = {"downloadCode": "dc4", "fileName": "合同.pdf"}
VOICE_NO_TRANSCRIPT = {"downloadCode": "dc3", "duration": 3000}


def answers(fake: FakeDingTalk) -> list[str]:
    return [b["text"]["content"] for b in fake.bodies("/robot/sendBySession")]


@pytest.mark.parametrize(("msgtype", "content"), [
    ("file", FILE), ("audio", VOICE_NO_TRANSCRIPT), ("video", {"downloadCode": "d"}),
    ("interactiveCard", None),
])
async def test_unreadable_message_becomes_an_event_carrying_the_answer(
        redis: Redis, keys: KeyBuilder, msgtype: str, content: dict | None) -> None:  # type: ignore[type-arg]
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    outcome = await adapter.handle_webhook(
        signed_request(robot_message(msgtype, msg_id="f1", content=content)))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert (msg.kind, msg.event_type, msg.event_id) == ("event", "unsupported", "f1")
    assert msg.event_data == {"msgtype": msgtype, "reply": DEFAULT}
    assert answers(fake) == []   # nothing sent from the web process: the worker answers


async def test_readable_messages_are_plain_messages(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    voice = robot_message("audio", msg_id="v1",
                          content={**VOICE_NO_TRANSCRIPT, "recognition": "你好"})
    for payload in (robot_message(msg_id="t1"), voice):
        outcome = await adapter.handle_webhook(signed_request(payload))
        assert isinstance(outcome, Accepted)
        assert outcome.messages[0].kind == "message"


async def test_configured_text_and_readable_types(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys, unsupported_text="Please type your question.",
                           readable_types=["text", "file"])
    file_msg = await adapter.handle_webhook(signed_request(
        robot_message("file", msg_id="f2", content=FILE)))
    assert isinstance(file_msg, Accepted)
    assert file_msg.messages[0].segments[-1].file_id == "dc4"  # the app reads files now
    rich = await adapter.handle_webhook(signed_request(
        robot_message("richText", msg_id="r2", content={"richText": [{"text": "hi"}]})))
    assert isinstance(rich, Accepted)
    assert rich.messages[0].event_data["reply"] == "Please type your question."


async def test_event_mode_carries_no_answer(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys, unsupported="event")
    outcome = await adapter.handle_webhook(signed_request(
        robot_message("file", msg_id="f3", content=FILE)))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert (msg.kind, msg.event_type, msg.event_data) == ("event", "unsupported",
                                                          {"msgtype": "file"})
    assert msg.segments[-1].file_id == "dc4"


async def test_stream_mode_stores_it_and_acks(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys, mode="stream")
    stored: list[InboundMessage] = []

    async def ingest(msg: InboundMessage) -> bool:
        stored.append(msg)
        return True

    handler = BotMessageHandler(adapter.parse, ingest)
    frame = CallbackMessage.from_dict(callback_frame(
        robot_message("file", msg_id="s1", content=FILE)))
    ack = await handler.raw_process(frame)
    assert ack.code == AckMessage.STATUS_OK
    assert [(m.event_type, m.event_data["reply"]) for m in stored] == [("unsupported",
                                                                      DEFAULT)]


@pytest.fixture
def served_fake() -> Iterator[tuple[FakeDingTalk, str]]:
    fake = FakeDingTalk()
    with serve_in_thread(fake.asgi()) as base_url:
        yield fake, base_url


@pytest.mark.integration
async def test_the_worker_answers_once_even_when_replayed(
        clean_redis: str, tmp_path: Path, served_fake: tuple[FakeDingTalk, str]) -> None:
    """Route → inbox → real worker: one polite answer for a file sent (and replayed) to a
    bot whose app has no handler for it; the text message after it is answered normally."""
    fake, base = served_fake
    stack = BotStack(clean_redis, tmp_path, {
        "bots": {"b1": {"channel": "dingtalk", "app": "examples.support_bot:app",
                        "client_id": fake.app_key, "client_secret": fake.app_secret,
                        "api_base": base}},
        "ingress": {"lease_ttl": 2.0, "sweep_interval": 0.2},
    })
    try:
        stack.start_worker()
        hook = f"{base}/robot/sendBySession?session=u1"
        file_request = signed_request(robot_message("file", group=False, msg_id="u-f1",
                                                    content=FILE, webhook=hook),
                                      secret=fake.app_secret)
        async with stack.client() as client:
            for _ in range(2):
                response = await client.post("/webhooks/dingtalk/b1",
                                             content=file_request.body,
                                             headers=dict(file_request.headers))
                assert response.status_code == 200

            async def answered() -> bool:
                return bool(fake.bodies("/robot/sendBySession"))

            await wait_until(answered, timeout=20)
        await asyncio.sleep(0.5)  # a duplicate answer would show up by now
        assert answers(fake) == [DEFAULT]
        assert "合同" not in json.dumps(fake.bodies("/robot/sendBySession"), ensure_ascii=False)
    finally:
        await stack.close()
