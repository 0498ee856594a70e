"""App-mode callbacks through handle_webhook: official vectors, parsing, every bad input."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from wecom_testkit import (
    VEC_AES,
    VEC_BODY,
    VEC_CORP,
    VEC_ECHOSTR,
    VEC_POST_QUERY,
    VEC_TOKEN,
    app_options,
    app_xml,
    signed_post,
)

from adapters.wecom import WeComAdapter, WXBizMsgCrypt
from botcore.channel import Accepted, Challenge, Rejected, WebhookRequest

Make = Callable[..., WeComAdapter]
CRYPT = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
TS = "1409659813"


def _get(query: dict[str, str]) -> WebhookRequest:
    return WebhookRequest(method="GET", headers={}, query=query, body=b"")


async def test_official_url_verification_vector(make_adapter: Make) -> None:
    adapter = make_adapter(app_options(), now=1409659589)
    outcome = await adapter.handle_webhook(_get({
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
        "nonce": "263014780", "echostr": VEC_ECHOSTR}))
    assert outcome == Challenge(body="1616140317555161061")


async def test_echostr_plus_decoded_as_space_still_verifies(make_adapter: Make) -> None:
    adapter = make_adapter(app_options(), now=1409659589)
    outcome = await adapter.handle_webhook(_get({
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", "timestamp": "1409659589",
        "nonce": "263014780", "echostr": VEC_ECHOSTR.replace("+", " ")}))
    assert isinstance(outcome, Challenge)
    assert outcome.body == "1616140317555161061"


async def test_official_message_vector(make_adapter: Make) -> None:
    adapter = make_adapter(app_options(agent_id=218))
    outcome = await adapter.handle_webhook(
        WebhookRequest(method="POST", headers={}, query=VEC_POST_QUERY, body=VEC_BODY))
    assert isinstance(outcome, Accepted)
    assert outcome.ack_body == ""
    (msg,) = outcome.messages
    assert msg.text == "hello"
    assert msg.kind == "message"
    assert msg.sender.id == "mycreate"
    assert msg.conversation.chat_id == "mycreate"
    assert msg.chat_type == "private"
    assert msg.mentioned is True
    assert msg.message_id == "4561255354251345929"
    assert msg.event_id == "218:mycreate:4561255354251345929"
    assert msg.dedupe_key == "wecom:wc:218:mycreate:4561255354251345929"
    assert msg.timestamp == 1409659813.0
    assert msg.platform == {"mode": "app", "touser": "mycreate", "agent_id": "218"}


async def test_same_msgid_from_two_agents_gives_two_dedupe_keys(make_adapter: Make) -> None:
    adapter = make_adapter(app_options())
    ids = set()
    for agent in (1, 2):
        xml = app_xml("text", "<Content>hi</Content>", agent=agent, msg_id="42")
        outcome = await adapter.handle_webhook(signed_post(CRYPT, CRYPT.encrypt(xml), TS))
        assert isinstance(outcome, Accepted)
        ids.add(outcome.messages[0].dedupe_key)
    assert len(ids) == 2


@pytest.mark.parametrize(("msg_type", "fields", "segment_type", "check"), [
    ("image", "<PicUrl>http://p/1.jpg</PicUrl><MediaId>m1</MediaId>", "image",
     lambda s: s.url == "http://p/1.jpg" and s.file_id == "m1"),
    ("voice", "<MediaId>v1</MediaId><Format>amr</Format>", "voice",
     lambda s: s.file_id == "v1" and s.data["Format"] == "amr"),
    ("video", "<MediaId>vd</MediaId><ThumbMediaId>th</ThumbMediaId>", "video",
     lambda s: s.file_id == "vd" and s.data["ThumbMediaId"] == "th"),
    ("file", "<MediaId>f1</MediaId><FileName>a.pdf</FileName>", "file",
     lambda s: s.file_id == "f1" and s.name == "a.pdf"),
    ("location", "<Location_X>23.13</Location_X><Location_Y>113.35</Location_Y><Scale>15</Scale>"
     "<Label>广州</Label>", "location",
     lambda s: s.text == "广州" and s.data["latitude"] == "23.13"),
    ("link", "<Title>T</Title><Description>D</Description><Url>http://u</Url><PicUrl>p</PicUrl>",
     "link", lambda s: s.url == "http://u" and s.name == "T" and s.text == "D"),
])
async def test_message_types(make_adapter: Make, msg_type: str, fields: str, segment_type: str,
                             check: Callable[..., bool]) -> None:
    adapter = make_adapter(app_options())
    outcome = await adapter.handle_webhook(
        signed_post(CRYPT, CRYPT.encrypt(app_xml(msg_type, fields)), TS))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert msg.kind == "message"
    (segment,) = msg.segments
    assert segment.type == segment_type
    assert check(segment)
    assert msg.event_id == "1000002:zhangsan:1234567890123456"


@pytest.mark.parametrize(("fields", "native", "event_type", "event_id"), [
    ("<Event>enter_agent</Event><EventKey></EventKey>", "enter_agent", "enter_chat",
     "1000002:zhangsan:1409659813:enter_agent:"),
    ("<Event>click</Event><EventKey>#sendmsg#_0_0</EventKey>", "click", "menu_click",
     "1000002:zhangsan:1409659813:click:#sendmsg#_0_0"),
    ("<Event>change_contact</Event><ChangeType>create_user</ChangeType><UserID>lisi</UserID>",
     "change_contact", "member_joined",
     "1000002:zhangsan:1409659813:change_contact::create_user:lisi"),
])
async def test_events(make_adapter: Make, fields: str, native: str, event_type: str,
                      event_id: str) -> None:
    adapter = make_adapter(app_options())
    xml = app_xml("event", fields, msg_id=None)
    outcome = await adapter.handle_webhook(signed_post(CRYPT, CRYPT.encrypt(xml), TS))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    assert msg.kind == "event"
    assert msg.event_type == event_type
    assert msg.event_id == event_id
    assert msg.event_data["Event"] == native  # the platform's name stays in the data
    assert msg.event_data["native"] == native


async def test_voice_recognition_becomes_text(make_adapter: Make) -> None:
    adapter = make_adapter(app_options())
    xml = app_xml("voice", "<MediaId>v</MediaId><Recognition>你好</Recognition>")
    outcome = await adapter.handle_webhook(signed_post(CRYPT, CRYPT.encrypt(xml), TS))
    assert isinstance(outcome, Accepted)
    assert outcome.messages[0].text == "你好"


# ---- bad input --------------------------------------------------------------------------

def _vector_post(**query: str) -> WebhookRequest:
    return WebhookRequest(method="POST", headers={}, query={**VEC_POST_QUERY, **query},
                          body=VEC_BODY)


@pytest.mark.parametrize(("request_", "status", "reason"), [
    (_vector_post(msg_signature="0" * 40), 401, "bad_signature"),
    (_vector_post(msg_signature="é"), 401, "bad_signature"),
    (_vector_post(nonce="1372623150"), 401, "bad_signature"),
    (WebhookRequest(method="POST", headers={}, query={"timestamp": TS, "nonce": "1"},
                    body=VEC_BODY), 401, "missing_signature"),
    (_vector_post(timestamp="1409659813x"), 400, "bad_timestamp"),
    (_vector_post(timestamp="1409650000"), 401, "stale_timestamp"),
    (WebhookRequest(method="PUT", headers={}, query=VEC_POST_QUERY, body=VEC_BODY), 405,
     "method_not_allowed"),
    (WebhookRequest(method="POST", headers={}, query=VEC_POST_QUERY,
                    body=b"<xml>" + b"a" * 1_048_577 + b"</xml>"), 413, "body_too_large"),
    (WebhookRequest(method="POST", headers={}, query=VEC_POST_QUERY, body=b"<xml><Enc"), 400,
     "bad_xml"),
    (WebhookRequest(method="POST", headers={}, query=VEC_POST_QUERY,
                    body=b"<xml><ToUserName>x</ToUserName></xml>"), 400, "missing_encrypt"),
    (WebhookRequest(method="GET", headers={}, query=VEC_POST_QUERY, body=b""), 400,
     "missing_echostr"),
])
async def test_rejects_forged_and_malformed(make_adapter: Make, request_: WebhookRequest,
                                            status: int, reason: str) -> None:
    outcome = await make_adapter(app_options()).handle_webhook(request_)
    assert outcome == Rejected(status, reason)


async def test_replay_window_uses_the_clock(make_adapter: Make) -> None:
    late = make_adapter(app_options(), now=1409659813 + 301)
    assert await late.handle_webhook(_vector_post()) == Rejected(401, "stale_timestamp")
    early = make_adapter(app_options(), now=1409659813 - 301)
    assert await early.handle_webhook(_vector_post()) == Rejected(401, "stale_timestamp")
    wide = make_adapter(app_options(replay_window=400), now=1409659813 + 301)
    assert isinstance(await wide.handle_webhook(_vector_post()), Accepted)


@pytest.mark.parametrize(("xml", "reason"), [
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     "<xml><Encrypt>&b;</Encrypt></xml>", "bad_xml"),
    ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
     "<xml><Encrypt>&e;</Encrypt></xml>", "bad_xml"),
    ("<notxml><Encrypt>abc</Encrypt></notxml>", "bad_xml"),
])
async def test_hostile_outer_xml(make_adapter: Make, xml: str, reason: str) -> None:
    request = WebhookRequest(method="POST", headers={}, query=VEC_POST_QUERY, body=xml.encode())
    outcome = await make_adapter(app_options()).handle_webhook(request)
    assert outcome == Rejected(400, reason)


async def test_hostile_inner_xml_is_rejected_after_signature(make_adapter: Make) -> None:
    bomb = ('<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            "<xml><Content>&b;</Content></xml>")
    outcome = await make_adapter(app_options()).handle_webhook(
        signed_post(CRYPT, CRYPT.encrypt(bomb), TS))
    assert outcome == Rejected(400, "bad_xml")


async def test_incomplete_inner_xml(make_adapter: Make) -> None:
    outcome = await make_adapter(app_options()).handle_webhook(
        signed_post(CRYPT, CRYPT.encrypt("<xml><MsgType>text</MsgType></xml>"), TS))
    assert outcome == Rejected(400, "bad_payload")


async def test_wrong_receive_id_is_403(make_adapter: Make) -> None:
    other_corp = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, "wwsomeothercorp")
    outcome = await make_adapter(app_options()).handle_webhook(
        signed_post(other_corp, other_corp.encrypt(app_xml("text")), TS))
    assert outcome == Rejected(403, "wrong_receiver")


def _raw_encrypt(plain: bytes) -> str:
    """AES-CBC with the vector key and no padding added: for hand-made bad plaintexts."""
    key = base64.b64decode(VEC_AES + "=")
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


@pytest.mark.parametrize(("encrypt", "reason"), [
    ("not base64 at all!", "bad_base64"),
    ("QUJD", "bad_ciphertext"),  # 3 bytes: not whole AES blocks
    (_raw_encrypt(b"\x00" * 32), "bad_padding"),  # pad byte 0
    (_raw_encrypt(b"\x21" * 64), "bad_padding"),  # pad 33 > block size 32
    (_raw_encrypt(b"a" * 30 + b"\x01\x02"), "bad_padding"),  # inconsistent pad bytes
    (_raw_encrypt(b"r" * 16 + b"\x00\x00\x10\x00" + b"\x04" * 12), "bad_length"),
])
async def test_signed_but_undecryptable(make_adapter: Make, encrypt: str, reason: str) -> None:
    outcome = await make_adapter(app_options()).handle_webhook(signed_post(CRYPT, encrypt, TS))
    assert outcome == Rejected(400, reason)


async def test_nonce_cache_rejects_a_replay(make_adapter: Make) -> None:
    adapter = make_adapter(app_options(nonce_cache=True, agent_id=218))
    first = await adapter.handle_webhook(_vector_post())
    assert isinstance(first, Accepted)
    assert await adapter.handle_webhook(_vector_post()) == Rejected(401, "replayed_nonce")
    without = make_adapter(app_options(agent_id=218))
    assert isinstance(await without.handle_webhook(_vector_post()), Accepted)
