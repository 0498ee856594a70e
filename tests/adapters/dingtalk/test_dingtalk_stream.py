"""Stream mode: SDK frames through our handler; a loopback WebSocket for the connection loop."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
import websockets
from dingtalk_stream import AckMessage, CallbackMessage, ChatbotMessage, SystemMessage
from dingtalk_support import make_adapter, robot_message
from fake_dingtalk import FakeDingTalk
from redis.asyncio import Redis

from adapters.dingtalk._stream import BotMessageHandler, make_stream_client
from botcore.errors import IngressError
from botcore.ingress.inbox import Inbox
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey, InboundMessage


def callback_frame(data: dict[str, Any], message_id: str = "frame-1") -> dict[str, Any]:
    return {"specVersion": "1.0", "type": "CALLBACK",
            "headers": {"topic": ChatbotMessage.TOPIC, "messageId": message_id,
                        "contentType": "application/json", "time": "1700000000000"},
            "data": json.dumps(data, ensure_ascii=False)}


async def test_handler_acks_only_after_ingest(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    stored: list[InboundMessage] = []
    release = asyncio.Event()

    async def ingest(msg: InboundMessage) -> bool:
        await release.wait()
        stored.append(msg)
        return True

    handler = BotMessageHandler(adapter.parse, ingest)
    frame = CallbackMessage.from_dict(callback_frame(robot_message()))
    pending = asyncio.create_task(handler.raw_process(frame))
    await asyncio.sleep(0.05)
    assert not pending.done()  # no ack while the durable write is in flight
    release.set()
    ack = await pending
    assert isinstance(ack, AckMessage)
    assert ack.code == AckMessage.STATUS_OK
    assert ack.to_dict()["headers"]["messageId"] == "frame-1"
    assert json.loads(ack.to_dict()["data"]) == {"response": "OK"}
    assert stored[0].text == "你好 bot"
    assert stored[0].event_id == "msgA1"


async def test_failed_write_is_retried_until_redis_is_back(redis: Redis, keys: KeyBuilder
                                                           ) -> None:
    """DingTalk never re-pushes a robot message: the handler retries the write itself."""
    inbox = Inbox(redis, keys)
    attempts = 0
    # A real Redis refusing writes: NOREPLICAS for every write while min-replicas-to-write=1.
    await redis.config_set("min-replicas-to-write", 1)
    try:
        async def ingest(msg: InboundMessage) -> bool:
            nonlocal attempts
            attempts += 1
            if attempts == 3:
                await redis.config_set("min-replicas-to-write", 0)  # Redis is back
            return not (await inbox.admit(msg)).duplicate

        handler = BotMessageHandler(make_adapter(redis, keys).parse, ingest,
                                    retry_for=10, wait_initial=0.01, wait_max=0.05)
        ack = await handler.raw_process(CallbackMessage.from_dict(
            callback_frame(robot_message(msg_id="r1"))))
    finally:
        await redis.config_set("min-replicas-to-write", 0)
    assert ack.code == AckMessage.STATUS_OK
    assert attempts == 3  # two refused writes, then stored
    conv = ConversationKey(channel="dingtalk", bot_id="b1", chat_id="cidGroup==")
    (entry,) = await redis.lrange(keys.inbox(conv.id), 0, -1)  # type: ignore[misc]
    assert json.loads(entry)["message"]["event_id"] == "r1"


async def test_write_given_up_after_retry_for_is_logged_and_acked(
        redis: Redis, keys: KeyBuilder, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def ingest(msg: InboundMessage) -> bool:
        nonlocal calls
        calls += 1
        raise IngressError("redis down")

    handler = BotMessageHandler(make_adapter(redis, keys).parse, ingest,
                                retry_for=0.3, wait_initial=0.01, wait_max=0.05)
    ack = await handler.raw_process(CallbackMessage.from_dict(
        callback_frame(robot_message(msg_id="lost1"))))
    assert ack.code == AckMessage.STATUS_OK  # withholding the ack would not bring it back
    assert calls > 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "lost1" in errors[0].getMessage()
    assert "你好" not in caplog.text  # the content is never logged


async def test_malformed_message_is_acked_and_dropped(redis: Redis, keys: KeyBuilder) -> None:
    calls: list[InboundMessage] = []

    async def ingest(msg: InboundMessage) -> bool:
        calls.append(msg)
        return True

    handler = BotMessageHandler(make_adapter(redis, keys).parse, ingest)
    ack = await handler.raw_process(CallbackMessage.from_dict(callback_frame({"x": 1})))
    assert ack.code == AckMessage.STATUS_OK
    assert calls == []


async def test_system_frames(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)

    async def ingest(msg: InboundMessage) -> bool:
        return True

    client = make_stream_client("k", "s", adapter.deps.http, "http://x",
                                BotMessageHandler(adapter.parse, ingest), idle_timeout=5)
    ping = {"specVersion": "1.0", "type": SystemMessage.TYPE,
            "headers": {"topic": "ping", "messageId": "p1"}, "data": '{"opaque": "abc"}'}
    ack, disconnect = await client.route(ping)
    assert json.loads(ack.to_dict()["data"]) == {"opaque": "abc"}
    assert disconnect is False
    bye = {**ping, "headers": {"topic": SystemMessage.TOPIC_DISCONNECT, "messageId": "d1"}}
    assert await client.route(bye) == (None, True)


async def test_connection_loop_acks_and_idle_watchdog_reconnects(
        redis: Redis, keys: KeyBuilder) -> None:
    """Real sockets on loopback: a frame is acked; a silent socket is dropped and reopened."""
    acks: list[dict[str, Any]] = []
    connections = 0

    async def server(ws: Any) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            await ws.send(json.dumps(callback_frame(robot_message(), "f-1")))
            acks.append(json.loads(await ws.recv()))
        await ws.wait_closed()  # then silence: only the client's watchdog ends it

    async with websockets.serve(server, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        fake = FakeDingTalk(ws_endpoint=f"ws://127.0.0.1:{port}/connect")
        adapter = make_adapter(redis, keys, fake, mode="stream", stream_idle_timeout=0.3)
        stored: list[InboundMessage] = []

        async def ingest(msg: InboundMessage) -> bool:
            stored.append(msg)
            return True

        task = asyncio.create_task(adapter.listen(ingest))
        try:
            for _ in range(100):
                await asyncio.sleep(0.05)
                if connections >= 2:
                    break
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert connections >= 2  # the watchdog closed the idle socket and a new ticket was used
    assert fake.paths().count("/v1.0/gateway/connections/open") >= 2
    opened = fake.bodies("/v1.0/gateway/connections/open")[0]
    assert opened["subscriptions"] == [{"type": "CALLBACK", "topic": ChatbotMessage.TOPIC}]
    assert acks[0]["code"] == 200
    assert acks[0]["headers"]["messageId"] == "f-1"
    assert [m.event_id for m in stored] == ["msgA1"]


def test_backoff_grows_and_is_capped(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    client = make_stream_client("k", "s", adapter.deps.http, "http://x",
                                BotMessageHandler(adapter.parse, lambda m: None),  # type: ignore[arg-type, return-value]
                                idle_timeout=5)
    assert client.backoff(0) == 0.0
    assert 0.5 <= client.backoff(1) <= 1.0
    assert 4.0 <= client.backoff(4) <= 8.0
    assert client.backoff(30) <= 60.0
