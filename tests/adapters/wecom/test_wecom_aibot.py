"""AI bot (智能机器人) callbacks: JSON crypto round trip, stream polling, response_url."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fake_wecom import FakeWeCom
from wecom_testkit import (
    AIBOT_AES,
    AIBOT_TOKEN,
    API_BASE,
    aibot_options,
    decrypt_reply,
    signed_post,
)

from adapters.wecom import WeComAdapter, WeComError, WXBizMsgCrypt
from botcore.channel import Accepted, Challenge, Rejected, WebhookRequest
from botcore.message import OutboundMessage

Make = Callable[..., WeComAdapter]
CRYPT = WXBizMsgCrypt(AIBOT_TOKEN, AIBOT_AES, "")
NOW = 1_760_000_000
TS = str(NOW)


def _callback(msgtype: str, body: dict[str, Any], *, chattype: str = "single",
              msgid: str = "CAIQ16HMjQYY") -> dict[str, Any]:
    return {"msgid": msgid, "aibotid": "AIBOTID", "chatid": "CHATID", "chattype": chattype,
            "from": {"userid": "zhangsan"},
            "response_url": f"{API_BASE}/cgi-bin/aibot/response?response_code=RC1",
            "msgtype": msgtype, **body}


def _post(payload: dict[str, Any], nonce: str = "42") -> WebhookRequest:
    return signed_post(CRYPT, CRYPT.encrypt(json.dumps(payload)), TS, nonce, json_body=True)


async def test_url_verification_with_empty_receive_id(make_adapter: Make) -> None:
    echostr = CRYPT.encrypt("8675309")
    request = WebhookRequest(method="GET", headers={}, query={
        "msg_signature": CRYPT.signature(TS, "1", echostr), "timestamp": TS, "nonce": "1",
        "echostr": echostr}, body=b"")
    assert await make_adapter(aibot_options(), now=NOW).handle_webhook(request) == \
        Challenge(body="8675309")


async def test_app_receive_id_is_rejected_in_aibot_mode(make_adapter: Make) -> None:
    app_crypt = WXBizMsgCrypt(AIBOT_TOKEN, AIBOT_AES, "wwcorp")
    request = signed_post(app_crypt, app_crypt.encrypt("{}"), TS, json_body=True)
    outcome = await make_adapter(aibot_options(), now=NOW).handle_webhook(request)
    assert outcome == Rejected(403, "wrong_receiver")


async def test_text_message_starts_a_stream(make_adapter: Make) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    payload = _callback("text", {"text": {"content": "@RobotA hello robot"},
                                 "quote": {"msgtype": "text", "text": {"content": "earlier"}}},
                        chattype="group")
    outcome = await adapter.handle_webhook(_post(payload))
    assert isinstance(outcome, Accepted)
    assert outcome.content_type == "application/json"
    (msg,) = outcome.messages
    assert msg.text == "hello robot"
    assert msg.chat_type == "group"
    assert msg.conversation.chat_id == "CHATID"
    assert msg.event_id == "AIBOTID:zhangsan:CAIQ16HMjQYY"
    assert msg.segments[-1].type == "quote"
    assert msg.segments[-1].text == "earlier"
    reply = decrypt_reply(CRYPT, outcome.ack_body)
    assert reply == {"msgtype": "stream", "stream": {
        "id": msg.platform["stream_id"], "finish": False, "content": ""}}
    # a redelivery of the same message answers the same stream id
    again = await adapter.handle_webhook(_post(payload, nonce="43"))
    assert isinstance(again, Accepted)
    assert decrypt_reply(CRYPT, again.ack_body)["stream"]["id"] == msg.platform["stream_id"]


@pytest.mark.parametrize(("msgtype", "body", "text", "segment_types"), [
    ("voice", {"voice": {"content": "语音转文字"}}, "语音转文字", ["voice"]),
    ("image", {"image": {"url": "https://img/1"}}, "", ["image"]),
    ("file", {"file": {"url": "https://file/1"}}, "", ["file"]),
    ("mixed", {"mixed": {"msg_item": [
        {"msgtype": "text", "text": {"content": "look"}},
        {"msgtype": "image", "image": {"url": "https://img/2"}}]}}, "look", ["image"]),
])
async def test_message_types(make_adapter: Make, msgtype: str, body: dict[str, Any], text: str,
                             segment_types: list[str]) -> None:
    outcome = await make_adapter(aibot_options(), now=NOW).handle_webhook(
        _post(_callback(msgtype, body)))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert msg.text == text
    assert [s.type for s in msg.segments] == segment_types
    assert msg.chat_type == "private"
    assert msg.conversation.chat_id == "zhangsan"


async def test_enter_chat_event(make_adapter: Make) -> None:
    payload = _callback("event", {"event": {"eventtype": "enter_chat"}, "create_time": NOW})
    outcome = await make_adapter(aibot_options(), now=NOW).handle_webhook(_post(payload))
    assert isinstance(outcome, Accepted)
    assert outcome.ack_body == ""
    (msg,) = outcome.messages
    assert msg.kind == "event"
    assert msg.event_type == "enter_chat"
    assert "stream_id" not in msg.platform


async def test_stream_refresh_reads_what_the_worker_wrote(make_adapter: Make) -> None:
    webhook = make_adapter(aibot_options(), now=NOW)
    worker = make_adapter(aibot_options(), now=NOW + 5)  # another process, same Redis
    first = await webhook.handle_webhook(_post(_callback("text", {"text": {"content": "hi"}})))
    assert isinstance(first, Accepted)
    inbound = first.messages[0]
    stream_id = inbound.platform["stream_id"]
    refresh = _callback("stream", {"stream": {"id": stream_id}}, msgid="refresh1")

    async def poll(nonce: str) -> dict[str, Any]:
        outcome = await webhook.handle_webhook(_post(refresh, nonce=nonce))
        assert isinstance(outcome, Accepted)
        assert outcome.messages == ()
        stream: dict[str, Any] = decrypt_reply(CRYPT, outcome.ack_body)["stream"]
        return stream

    assert await poll("1") == {"id": stream_id, "finish": False, "content": ""}
    reply = OutboundMessage(conversation=inbound.conversation, context=inbound.platform)
    stream = worker.open_stream(reply)
    assert stream is not None
    await stream.update("Hel")
    assert await poll("2") == {"id": stream_id, "finish": False, "content": "Hel"}
    result = await stream.finish("Hello!")
    assert result.message_id == stream_id
    assert await poll("3") == {"id": stream_id, "finish": True, "content": "Hello!"}


async def test_send_after_stream_finished_uses_response_url_once(
        make_adapter: Make, fake: FakeWeCom) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    first = await adapter.handle_webhook(_post(_callback("text", {"text": {"content": "hi"}})))
    assert isinstance(first, Accepted)
    inbound = first.messages[0]
    reply = OutboundMessage(conversation=inbound.conversation, context=inbound.platform,
                            text="answer")
    assert (await adapter.send(reply)).extra["via"] == "stream"
    second = await adapter.send(reply.model_copy(update={"text": "**more**"}))
    assert second.extra["via"] == "response_url"
    assert fake.aibot_responses == [
        {"msgtype": "markdown", "markdown": {"content": "**more**"}, "code": "RC1"}]
    with pytest.raises(WeComError):
        await adapter.send(reply)


async def test_expired_stream_falls_back_to_response_url(make_adapter: Make,
                                                         fake: FakeWeCom) -> None:
    webhook = make_adapter(aibot_options(), now=NOW)
    first = await webhook.handle_webhook(_post(_callback("text", {"text": {"content": "hi"}})))
    assert isinstance(first, Accepted)
    inbound = first.messages[0]
    late_worker = make_adapter(aibot_options(), now=NOW + 400)  # stream polling has stopped
    reply = OutboundMessage(conversation=inbound.conversation, context=inbound.platform,
                            text="late answer")
    assert (await late_worker.send(reply)).extra["via"] == "response_url"
    assert fake.aibot_responses[0]["markdown"]["content"] == "late answer"


async def test_response_url_on_another_host_is_refused(make_adapter: Make) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    reply = OutboundMessage(
        conversation={"channel": "wecom", "bot_id": "wc", "chat_id": "u"},
        context={"mode": "aibot", "response_url": "http://169.254.169.254/latest"}, text="x")
    with pytest.raises(WeComError):
        await adapter.send(reply)


@pytest.mark.parametrize(("body", "reason", "status"), [
    (b"not json", "bad_json", 400),
    (b"[1, 2]", "bad_json", 400),
    (b'{"encrypt": 5}', "missing_encrypt", 400),
])
async def test_bad_envelopes(make_adapter: Make, body: bytes, reason: str, status: int) -> None:
    request = WebhookRequest(method="POST", headers={}, query={
        "msg_signature": "x", "timestamp": TS, "nonce": "1"}, body=body)
    outcome = await make_adapter(aibot_options(), now=NOW).handle_webhook(request)
    assert outcome == Rejected(status, reason)


async def test_signed_garbage_inside(make_adapter: Make) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    for inner, reason in (("{not json", "bad_json"), ('{"msgtype": "text"}', "bad_payload")):
        request = signed_post(CRYPT, CRYPT.encrypt(inner), TS, json_body=True)
        assert await adapter.handle_webhook(request) == Rejected(400, reason)
