"""handle_webhook: challenges, authentic events, and every bad input -> Rejected 4xx."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any

import pytest
from Crypto.Cipher import AES
from feishu_helpers import ENCRYPT_KEY, NOW, TOKEN, MakeAdapter, message_event, signed
from lark_oapi.core.model import RawRequest
from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

from botcore.channel import Accepted, Challenge, Rejected, WebhookRequest


def plain(payload: dict[str, Any] | bytes) -> WebhookRequest:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return WebhookRequest(method="POST", headers={}, query={}, body=body)


async def test_plain_url_verification(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(encrypt_key=None)
    outcome = await adapter.handle_webhook(plain(
        {"challenge": "ajls384kdjx98XX", "token": TOKEN, "type": "url_verification"}))
    assert isinstance(outcome, Challenge)
    assert json.loads(outcome.body) == {"challenge": "ajls384kdjx98XX"}
    assert outcome.content_type == "application/json"


async def test_encrypted_url_verification_without_signature_headers(
        make_adapter: MakeAdapter) -> None:
    payload = {"challenge": "c-123", "token": TOKEN, "type": "url_verification"}
    outcome = await make_adapter().handle_webhook(signed(payload, sign=False))
    assert isinstance(outcome, Challenge)
    assert json.loads(outcome.body) == {"challenge": "c-123"}


async def test_url_verification_with_wrong_token(make_adapter: MakeAdapter) -> None:
    payload = {"challenge": "c", "token": "nope", "type": "url_verification"}
    outcome = await make_adapter().handle_webhook(signed(payload, sign=False))
    assert outcome == Rejected(403, "bad_token")


async def test_signed_encrypted_event_matches_lark_oapi(make_adapter: MakeAdapter) -> None:
    request = signed(message_event("hi there"))
    # lark-oapi's own handler, as the reference, accepts the very same request
    seen: list[Any] = []
    reference = (EventDispatcherHandler.builder(ENCRYPT_KEY, TOKEN)
                 .register_p2_customized_event("im.message.receive_v1", seen.append).build())
    raw = RawRequest()
    raw.uri, raw.body = "/webhook", request.body
    raw.headers = {k.title(): v for k, v in request.headers.items()}
    assert reference.do(raw).status_code == 200
    assert len(seen) == 1

    outcome = await make_adapter().handle_webhook(request)
    assert isinstance(outcome, Accepted)
    assert (outcome.ack_body, outcome.content_type) == ("{}", "application/json")
    (msg,) = outcome.messages
    assert (msg.event_id, msg.text, msg.chat_type, msg.mentioned) == ("msg:om_1", "hi there",
                                                                      "private", True)
    assert msg.conversation.chat_id == "oc_chat"
    assert msg.dedupe_key == "feishu:fs:msg:om_1"  # the message, whatever the delivery
    assert msg.platform["delivery_id"] == "ev-1"
    json.dumps(dict(msg.platform))  # JSON-able: crosses the queue


async def test_plaintext_event_with_token_only(make_adapter: MakeAdapter) -> None:
    outcome = await make_adapter(encrypt_key=None).handle_webhook(plain(message_event("yo")))
    assert isinstance(outcome, Accepted)
    assert outcome.messages[0].text == "yo"


async def test_v1_event(make_adapter: MakeAdapter) -> None:
    payload = {"uuid": "u-1", "token": TOKEN, "ts": "1700000000.1", "type": "event_callback",
               "event": {"type": "message", "open_chat_id": "oc_9", "chat_type": "group",
                         "msg_type": "text", "open_id": "ou_x", "open_message_id": "om_9",
                         "is_mention": True, "text": "@_user_1 hi",
                         "text_without_at_bot": " hi"}}
    outcome = await make_adapter().handle_webhook(signed(payload))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert (msg.event_id, msg.text, msg.mentioned, msg.chat_type) == ("msg:om_9", "hi", True,
                                                                      "group")


async def test_unknown_authentic_event_is_accepted_and_ignored(
        make_adapter: MakeAdapter) -> None:
    payload = message_event()
    payload["header"]["event_type"] = "im.chat.updated_v1"
    outcome = await make_adapter().handle_webhook(signed(payload))
    assert outcome == Accepted((), ack_body="{}", content_type="application/json")


async def test_card_action_event(make_adapter: MakeAdapter) -> None:
    payload = {"schema": "2.0",
               "header": {"event_id": "ev-card", "token": TOKEN,
                          "event_type": "card.action.trigger", "create_time": "1"},
               "event": {"operator": {"open_id": "ou_user"}, "token": "c-tok",
                         "action": {"value": {"action": "yes"}, "tag": "button"},
                         "context": {"open_message_id": "om_5", "open_chat_id": "oc_5"}}}
    outcome = await make_adapter().handle_webhook(signed(payload))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert (msg.kind, msg.event_type, msg.sender.id) == ("event", "card_action", "ou_user")
    assert msg.event_data["value"] == {"action": "yes"}
    assert msg.conversation.chat_id == "oc_5"


def _tamper(request: WebhookRequest, **headers: str) -> WebhookRequest:
    return WebhookRequest(request.method, {**request.headers, **headers}, request.query,
                          request.body)


@pytest.mark.parametrize(("build", "status", "reason"), [
    (lambda: _tamper(signed(message_event()), **{"x-lark-signature": "0" * 64}), 401,
     "bad_signature"),
    (lambda: signed(message_event(), sign=False), 401, "missing_signature"),
    (lambda: _tamper(signed(message_event()), **{"x-lark-request-nonce": ""}), 401,
     "missing_signature"),
    (lambda: signed(message_event(token="wrong")), 403, "bad_token"),
    (lambda: signed(message_event(), ts=str(int(NOW) - 301)), 401, "stale_timestamp"),
    (lambda: signed(message_event(), ts=str(int(NOW) + 400)), 401, "stale_timestamp"),
    (lambda: signed(message_event(), ts="yesterday"), 400, "bad_timestamp"),
    (lambda: signed(b'{"encrypt": "@@@not base64@@@"}', encrypt=False), 400, "bad_base64"),
    (lambda: signed(b'{"encrypt": 42}', encrypt=False), 400, "bad_base64"),
    (lambda: signed(b'{"encrypt": "QUJDRA=="}', encrypt=False), 400, "bad_ciphertext_length"),
    (lambda: signed(b"{not json", encrypt=False), 400, "malformed_json"),
    (lambda: signed(b"[1, 2]", encrypt=False), 400, "malformed_json"),
    (lambda: signed(b"\xff\xfe", encrypt=False), 400, "malformed_json"),
    (lambda: signed(b"{broken inner json"), 400, "malformed_json"),
    (lambda: signed(message_event(), encrypt=False), 400, "expected_encrypted_body"),
    (lambda: signed({"schema": "2.0", "header": {"token": TOKEN}}), 400, "bad_event"),
])
async def test_bad_input_is_rejected(make_adapter: MakeAdapter, build: Any, status: int,
                                     reason: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = await make_adapter().handle_webhook(build())
    assert outcome == Rejected(status, reason)
    for secret in (ENCRYPT_KEY, TOKEN, "secret"):
        assert secret not in caplog.text


async def test_bad_padding_rejected(make_adapter: MakeAdapter) -> None:
    cipher = AES.new(hashlib.sha256(ENCRYPT_KEY.encode()).digest(), AES.MODE_CBC, b"\x02" * 16)
    encrypted = base64.b64encode(b"\x02" * 16 + cipher.encrypt(b"y" * 31 + b"\x11")).decode()
    body = json.dumps({"encrypt": encrypted}).encode()
    outcome = await make_adapter().handle_webhook(signed(body, encrypt=False))
    assert outcome == Rejected(400, "bad_padding")


async def test_same_request_again_is_accepted_for_ingress_to_dedupe(
        make_adapter: MakeAdapter) -> None:
    # e.g. the first durable write failed (503) and the very same request comes again:
    # refusing it as a replayed nonce would lose the message
    adapter = make_adapter()
    request = signed(message_event(), nonce="once")
    first = await adapter.handle_webhook(request)
    again = await adapter.handle_webhook(request)
    assert isinstance(first, Accepted)
    assert isinstance(again, Accepted)
    assert first.messages[0].dedupe_key == again.messages[0].dedupe_key


async def test_replay_outside_the_window_is_refused(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    request = signed(message_event(), ts=str(int(NOW)))
    adapter.clock = lambda: NOW + 301
    assert await adapter.handle_webhook(request) == Rejected(401, "stale_timestamp")


async def test_oversized_and_wrong_method(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    big = WebhookRequest("POST", {}, {}, b"{" + b" " * (1024 * 1024) + b"}")
    assert await adapter.handle_webhook(big) == Rejected(413, "body_too_large")
    get = WebhookRequest("GET", {}, {}, b"")
    assert await adapter.handle_webhook(get) == Rejected(405, "method_not_allowed")


async def test_long_connection_mode_refuses_webhooks(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="long_connection")
    outcome = await adapter.handle_webhook(signed(message_event()))
    assert outcome == Rejected(404, "webhook_mode_off")


async def test_encrypted_body_without_configured_key(make_adapter: MakeAdapter) -> None:
    outcome = await make_adapter(encrypt_key=None).handle_webhook(signed(message_event()))
    assert outcome == Rejected(400, "unexpected_encrypted_body")


async def test_one_message_under_two_event_ids_has_one_dedupe_key(
        make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    keys = set()
    for event_id in ("ev-first", "ev-redelivered"):
        outcome = await adapter.handle_webhook(signed(message_event("x", event_id=event_id)))
        assert isinstance(outcome, Accepted)
        keys.add(outcome.messages[0].dedupe_key)
    other = await adapter.handle_webhook(signed(message_event("y", event_id="ev-3",
                                                              message_id="om_2")))
    assert isinstance(other, Accepted)
    assert keys == {"feishu:fs:msg:om_1"} != {other.messages[0].dedupe_key}
