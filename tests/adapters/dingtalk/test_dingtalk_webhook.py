"""HTTP receive mode: signature headers, replay cache, parsing of every message type."""

from __future__ import annotations

import json
import logging
import time

import pytest
from dingtalk_support import SECRET, make_adapter, robot_message, signed_request
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from botcore.channel import Accepted, Rejected, WebhookRequest
from botcore.errors import ConfigError
from botcore.keys import KeyBuilder
from botcore.settings import BotConfig


async def accept_one(adapter, payload) -> object:  # type: ignore[no-untyped-def]
    outcome = await adapter.handle_webhook(signed_request(payload))
    assert isinstance(outcome, Accepted), outcome
    assert len(outcome.messages) == 1
    return outcome.messages[0]


async def test_group_text_message(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    msg = await accept_one(adapter, robot_message(
        atUsers=[{"dingtalkId": "$:LWCP_v1:$bot"}, {"dingtalkId": "$x", "staffId": "staff9"}]))
    assert msg.text == "你好 bot"  # the space DingTalk leaves after the @robot is gone
    assert (msg.chat_type, msg.mentioned, msg.event_id) == ("group", True, "msgA1")
    assert msg.conversation.chat_id == "cidGroup=="
    assert msg.sender.id == "staff001"
    assert msg.sender.name == "张三"
    assert [s.user_id for s in msg.segments if s.type == "mention"] == ["staff9"]
    assert msg.platform["sessionWebhook"].endswith("session=s1")
    assert msg.platform["robotCode"] == "dingappkey"
    assert msg.platform["conversationType"] == "2"
    json.dumps(dict(msg.platform))  # crosses the queue as JSON


async def test_private_message_is_mentioned(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    msg = await accept_one(adapter, robot_message(group=False))
    assert (msg.chat_type, msg.mentioned, msg.text) == ("private", True, "你好 bot")


async def test_group_message_not_at_bot(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    msg = await accept_one(adapter, robot_message(isInAtList=False))
    assert msg.mentioned is False


@pytest.mark.parametrize(("msgtype", "content", "text", "segment"), [
    ("richText", {"richText": [{"text": "看这个 "}, {"downloadCode": "dc1", "type": "picture"},
                               {"text": "图"}]}, "看这个 图", ("image", "dc1")),
    ("picture", {"downloadCode": "dc2", "pictureDownloadCode": "p2"}, "", ("image", "dc2")),
    ("audio", {"downloadCode": "dc3", "recognition": "语音转文字", "duration": 3000},
     "语音转文字", ("voice", "dc3")),
    ("file", {"downloadCode": "dc4", "fileName": "a.pdf", "spaceId": "1", "fileId": "2"}, "",
     ("file", "dc4")),
    ("video", {"downloadCode": "dc5", "duration": "8", "videoType": "mp4"}, "",
     ("video", "dc5")),
])
async def test_media_types(redis: Redis, keys: KeyBuilder, msgtype: str, content: dict,
                           text: str, segment: tuple[str, str]) -> None:
    adapter = make_adapter(redis, keys, readable_types=[
        "text", "richText", "picture", "audio", "file", "video"])
    msg = await accept_one(adapter, robot_message(msgtype, group=False, content=content))
    assert msg.kind == "message"
    assert msg.text == text
    media = [s for s in msg.segments if s.type != "mention"]
    assert (media[0].type, media[0].file_id) == segment
    if msgtype == "file":
        assert media[0].name == "a.pdf"


async def test_unsupported_type_event_and_ignore(redis: Redis, keys: KeyBuilder) -> None:
    event = make_adapter(redis, keys, unsupported="event")
    msg = await accept_one(event, robot_message("interactiveCard", msg_id="u1"))
    assert (msg.kind, msg.event_type, msg.event_data["msgtype"]) == (
        "event", "unsupported", "interactiveCard")
    ignore = make_adapter(redis, keys, unsupported="ignore")
    outcome = await ignore.handle_webhook(signed_request(robot_message("markdown", msg_id="u2")))
    assert outcome == Accepted(())


@pytest.mark.parametrize(("mutate", "status", "reason"), [
    (lambda r: WebhookRequest("POST", {**r.headers, "sign": "AAAA"}, {}, r.body), 401,
     "bad_signature"),
    (lambda r: WebhookRequest("POST", {"timestamp": r.headers["timestamp"]}, {}, r.body), 401,
     "missing_sign"),
    (lambda r: WebhookRequest("POST", {"sign": r.headers["sign"]}, {}, r.body), 401,
     "missing_timestamp"),
    (lambda r: WebhookRequest("POST", {**r.headers, "timestamp": "soon"}, {}, r.body), 400,
     "bad_timestamp"),
    (lambda r: WebhookRequest("GET", r.headers, {}, b""), 405, "method_not_allowed"),
    (lambda r: WebhookRequest("POST", r.headers, {}, b"{not json"), 400, "malformed_json"),
    (lambda r: WebhookRequest("POST", r.headers, {}, b"[1, 2]"), 400, "malformed_json"),
    (lambda r: WebhookRequest("POST", r.headers, {}, b'{"msgtype": "text"}'), 400,
     "not_a_robot_message"),
    (lambda r: WebhookRequest("POST", r.headers, {}, b" " * (1_048_577)), 413,
     "body_too_large"),
])
async def test_bad_requests_are_rejected(redis: Redis, keys: KeyBuilder, mutate, status: int,
                                         reason: str) -> None:  # type: ignore[no-untyped-def]
    adapter = make_adapter(redis, keys)
    outcome = await adapter.handle_webhook(mutate(signed_request(robot_message())))
    assert outcome == Rejected(status, reason)


async def test_expired_and_tighter_window(redis: Redis, keys: KeyBuilder) -> None:
    now_ms = int(time.time() * 1000)
    adapter = make_adapter(redis, keys)
    old = await adapter.handle_webhook(signed_request(robot_message(), ts_ms=now_ms - 3_700_000))
    assert old == Rejected(401, "stale_timestamp")
    ten_min = signed_request(robot_message(), ts_ms=now_ms - 600_000)
    assert isinstance(await adapter.handle_webhook(ten_min), Accepted)
    tight = make_adapter(redis, keys, sign_window=300)
    outcome = await tight.handle_webhook(signed_request(robot_message(), ts_ms=now_ms - 600_001))
    assert outcome == Rejected(401, "stale_timestamp")


async def test_injected_clock_accepts_an_old_request(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    adapter.clock = lambda: 1_600_000_000.0
    outcome = await adapter.handle_webhook(signed_request(robot_message(),
                                                          ts_ms=1_600_000_000_000))
    assert isinstance(outcome, Accepted)


async def test_same_headers_are_not_refused(redis: Redis, keys: KeyBuilder) -> None:
    """The sign covers only the timestamp: same headers, other msgId, is another message."""
    adapter = make_adapter(redis, keys)
    first = signed_request(robot_message(msg_id="m1"))
    second = WebhookRequest("POST", first.headers, {},
                            json.dumps(robot_message(msg_id="m2")).encode())
    outcomes = [await adapter.handle_webhook(r) for r in (first, second, first)]
    assert [o.messages[0].event_id for o in outcomes] == ["m1", "m2", "m1"]  # type: ignore[union-attr]
    assert await redis.keys("*") == []  # nothing remembered: ingress dedupes on msgId


async def test_verification_needs_no_redis(keys: KeyBuilder) -> None:
    dead = Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2,
                 retry=Retry(NoBackoff(), 0))
    adapter = make_adapter(dead, keys)
    outcome = await adapter.handle_webhook(signed_request(robot_message()))
    assert isinstance(outcome, Accepted)  # the route's durable write answers 503 if down
    await dead.aclose()


async def test_no_secret_in_logs_or_reasons(redis: Redis, keys: KeyBuilder,
                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    adapter = make_adapter(redis, keys)
    req = signed_request(robot_message())
    outcomes = [await adapter.handle_webhook(req),
                await adapter.handle_webhook(signed_request(robot_message(), secret="wrong")),
                await adapter.handle_webhook(WebhookRequest("POST", req.headers, {}, b"\xff"))]
    text = caplog.text + repr(outcomes) + repr(adapter.config)
    assert SECRET not in text
    assert req.headers["sign"] not in text


def test_config_errors_name_the_key() -> None:
    from botcore.channel import AdapterDeps

    deps = AdapterDeps(redis=None, http=None, keys=KeyBuilder())  # type: ignore[arg-type]
    from adapters.dingtalk import DingTalkAdapter

    with pytest.raises(ConfigError) as missing:
        DingTalkAdapter(BotConfig(id="b1", channel="dingtalk", app="a.b:c",
                                  client_secret="s"), deps)
    assert missing.value.key == "bots.b1.client_id"
    with pytest.raises(ConfigError) as half:
        DingTalkAdapter(BotConfig(id="b1", channel="dingtalk", app="a.b:c", client_id="k",
                                  client_secret="s", token="t"), deps)
    assert "aes_key and token" in half.value.expected
    with pytest.raises(ConfigError) as extra:
        DingTalkAdapter(BotConfig(id="b1", channel="dingtalk", app="a.b:c", client_id="k",
                                  client_secret="s", apikey="x"), deps)
    assert extra.value.key == "bots.b1.apikey"


AES = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"


def encrypted_request(plain: dict, token: str = "tk") -> WebhookRequest:  # type: ignore[type-arg]
    from adapters.dingtalk.crypto import CallbackCrypto

    crypto = CallbackCrypto(token, AES, "dingappkey")
    ts, nonce = str(int(time.time() * 1000)), "n0nce"
    enc = crypto.encrypt(json.dumps(plain))
    query = {"msg_signature": crypto.signature(ts, nonce, enc), "timestamp": ts, "nonce": nonce}
    return WebhookRequest("POST", {}, query, json.dumps({"encrypt": enc}).encode())


async def test_encrypted_robot_message_and_event(redis: Redis, keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys, aes_key=AES, token="tk")
    outcome = await adapter.handle_webhook(encrypted_request(robot_message(msg_id="e1")))
    assert isinstance(outcome, Accepted)
    assert outcome.messages[0].event_id == "e1"
    assert json.loads(outcome.ack_body)["encrypt"]  # encrypted "success"
    event = await adapter.handle_webhook(encrypted_request(
        {"EventType": "chat_update_title", "ChatId": "chat1", "EventId": "ev9"}))
    assert isinstance(event, Accepted)
    msg = event.messages[0]
    assert (msg.kind, msg.event_type, msg.event_id) == ("event", "chat_update_title", "ev9")
    joined = await adapter.handle_webhook(encrypted_request(
        {"EventType": "chat_add_member", "ChatId": "chat1", "EventId": "ev10"}))
    assert isinstance(joined, Accepted)
    assert joined.messages[0].event_type == "member_joined"  # the common name
    assert joined.messages[0].event_data["native"] == "chat_add_member"
    forged = await adapter.handle_webhook(encrypted_request({"EventType": "x"}, token="other"))
    assert forged == Rejected(401, "bad_signature")
