"""Long connection: a lark-oapi data frame -> our handler -> ingest awaited -> frame acked."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, ClassVar

import lark_oapi as lark
import pytest
from feishu_helpers import MakeAdapter, message_event
from lark_oapi.ws.enum import FrameType
from lark_oapi.ws.pb.pbbp2_pb2 import Frame

from adapters.feishu import adapter as adapter_module
from adapters.feishu._longconn import bridge, build_event_handler
from botcore.errors import IngressError
from botcore.message import InboundMessage


def data_frame(payload: dict[str, Any]) -> Frame:
    frame = Frame()
    for key, value in {"type": "event", "message_id": "m1", "sum": "1", "seq": "0",
                       "trace_id": "tr"}.items():
        header = frame.headers.add()
        header.key, header.value = key, value
    frame.method = FrameType.DATA.value
    frame.SeqID, frame.LogID, frame.service = 1, 1, 1
    frame.payload = json.dumps(payload).encode()
    return frame


async def deliver_frame(adapter: Any, payload: dict[str, Any],
                        ingest: Any) -> dict[str, Any]:
    """Run lark-oapi's own frame handling in a thread, like its ws client; return the ack."""
    loop = asyncio.get_running_loop()

    async def handle(event: dict[str, Any]) -> None:
        env = adapter_module.EventEnvelope.model_validate(event)
        for message in adapter_module.parse_event(env, event, adapter._ctx):
            await ingest(message)

    client = lark.ws.Client("cli_test", "secret",
                            event_handler=build_event_handler(bridge(loop, handle)))
    acks: list[bytes] = []

    async def capture(data: bytes) -> None:
        acks.append(data)

    client._write_message = capture
    await asyncio.to_thread(asyncio.run, client._handle_data_frame(data_frame(payload)))
    ack = Frame()
    ack.ParseFromString(acks[0])
    return dict(json.loads(ack.payload))


async def test_frame_is_acked_after_ingest(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="long_connection")
    stored: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        stored.append(message)
        return True

    ack = await deliver_frame(adapter, message_event("over ws", event_id="ev-ws"), ingest)
    assert ack["code"] == 200
    assert [(m.event_id, m.text) for m in stored] == [("msg:om_1", "over ws")]


async def test_failed_ingest_is_not_acked(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="long_connection")

    async def ingest(message: InboundMessage) -> bool:
        raise IngressError("redis down")

    ack = await deliver_frame(adapter, message_event(), ingest)
    assert ack["code"] == 500  # Feishu pushes the event again


class FakeSocket:
    """Stands in for LarkSocket: pushes one event from its own thread, then waits for stop."""

    instances: ClassVar[list[FakeSocket]] = []

    def __init__(self, app_id: str, app_secret: str, domain: str, on_event: Any) -> None:
        self.on_event, self.domain = on_event, domain
        self.stopped = threading.Event()
        FakeSocket.instances.append(self)

    def run(self) -> None:
        self.on_event(message_event("from socket", event_id="ev-sock"))
        self.stopped.wait(10)

    def stop(self) -> None:
        self.stopped.set()


async def test_listen_bridges_threads_and_stops_on_cancel(
        make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_module, "LarkSocket", FakeSocket)
    FakeSocket.instances.clear()
    adapter = make_adapter(mode="long_connection", api_base="https://open.larksuite.com")
    got = asyncio.Event()
    stored: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        assert threading.current_thread() is threading.main_thread()  # on the caller's loop
        stored.append(message)
        got.set()
        return True

    task = asyncio.create_task(adapter.listen(ingest))
    await asyncio.wait_for(got.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (socket,) = FakeSocket.instances
    assert socket.stopped.is_set()
    assert socket.domain == "https://open.larksuite.com"
    assert stored[0].text == "from socket"


def chat_event(event_type: str, event_id: str) -> dict[str, Any]:
    payload = message_event(event_id=event_id)
    payload["header"]["event_type"] = event_type
    payload["event"] = {"chat_id": "oc_group", "operator_id": {"open_id": "ou_admin"},
                        "name": "客服群", "users": [{"name": "李四", "tenant_key": "tk",
                                                   "user_id": {"open_id": "ou_lisi"}}]}
    return payload


@pytest.mark.parametrize(("native", "common"), [
    ("im.chat.member.user.added_v1", "member_joined"),
    ("im.chat.member.user.deleted_v1", "member_left"),
    ("im.chat.member.user.withdrawn_v1", "member_left"),
    ("im.chat.member.bot.added_v1", "bot_added"),
    ("im.chat.member.bot.deleted_v1", "bot_removed"),
    ("im.chat.access_event.bot_p2p_chat_entered_v1", "enter_chat"),
])
async def test_chat_events_over_the_long_connection(make_adapter: MakeAdapter, native: str,
                                                    common: str) -> None:
    adapter = make_adapter(mode="long_connection")
    stored: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        stored.append(message)
        return True

    ack = await deliver_frame(adapter, chat_event(native, f"ev-{common}"), ingest)
    assert ack["code"] == 200  # not "processor not found"
    (msg,) = stored
    assert (msg.kind, msg.event_type, msg.event_id) == ("event", common, f"ev-{common}")
    assert msg.event_data["native"] == native
    assert msg.event_data["users"] == [{"open_id": "ou_lisi", "name": "李四"}]
    assert msg.sender.id == "ou_admin"


async def test_card_action_over_the_long_connection(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="long_connection")
    stored: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        stored.append(message)
        return True

    payload = {"schema": "2.0",
               "header": {"event_id": "ev-card", "token": "", "create_time": "1",
                          "event_type": "card.action.trigger"},
               "event": {"operator": {"open_id": "ou_user"},
                         "action": {"value": {"action": "yes"}, "tag": "button"},
                         "context": {"open_message_id": "om_5", "open_chat_id": "oc_5"}}}
    ack = await deliver_frame(adapter, payload, ingest)
    assert ack["code"] == 200
    assert [(m.event_type, m.event_data["value"]) for m in stored] == [
        ("card_action", {"action": "yes"})]


async def test_unhandled_event_types_are_acked_not_pushed_again(
        make_adapter: MakeAdapter) -> None:
    """lark-oapi answers an event type without a processor with an error, and Feishu then
    pushes it again and again: botcore acknowledges and drops it, as the webhook does."""
    adapter = make_adapter(mode="long_connection")
    stored: list[InboundMessage] = []

    async def ingest(message: InboundMessage) -> bool:
        stored.append(message)
        return True

    payload = {"schema": "2.0",
               "header": {"event_id": "ev-upd", "token": "", "create_time": "1",
                          "event_type": "im.chat.updated_v1"},
               "event": {"chat_id": "oc_1"}}
    ack = await deliver_frame(adapter, payload, ingest)
    assert ack["code"] == 200
    assert stored == []
