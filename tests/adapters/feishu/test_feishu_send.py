"""Outbound against the fake Open Platform: token, send, reply, uploads, limits, CardKit."""

from __future__ import annotations

import base64
import json

import pytest
from fake_feishu import FakeFeishu
from feishu_helpers import MakeAdapter

from adapters.feishu import FeishuApiError
from adapters.feishu._stream import CardStream
from botcore.errors import ChannelRateLimited
from botcore.message import ConversationKey, OutboundMessage, Segment

CONV = ConversationKey(channel="feishu", bot_id="fs", chat_id="oc_chat")
CONTEXT = {"chat_id": "oc_chat", "message_id": "om_in", "receive_id_type": "chat_id"}


def out(text: str = "hi", **fields: object) -> OutboundMessage:
    fields.setdefault("idempotency_key", OutboundMessage.make_key("ev-1", 0))
    return OutboundMessage.model_validate({"conversation": CONV, "text": text, **fields})


async def test_send_text_to_chat_with_cached_token(make_adapter: MakeAdapter,
                                                   fake: FakeFeishu) -> None:
    adapter = make_adapter()
    first = await adapter.send(out("one"))
    await adapter.send(out("two", idempotency_key="k2"))
    assert len(fake.tokens) == 1  # fetched once, shared through Redis
    assert [m["content"] for m in fake.messages] == [{"text": "one"}, {"text": "two"}]
    assert fake.messages[0]["chat_id"] == "oc_chat"
    assert fake.messages[0]["uuid"] == out().idempotency_key
    assert first.message_id == fake.messages[0]["message_id"]


async def test_reply_quotes_the_inbound_message(make_adapter: MakeAdapter,
                                                fake: FakeFeishu) -> None:
    await make_adapter().send(out("answer", context=CONTEXT))
    (sent,) = fake.messages
    assert (sent["parent_id"], sent["content"]) == ("om_in", {"text": "answer"})
    assert sent["reply_in_thread"] is False
    await make_adapter().send(out("in topic", idempotency_key="k3",
                                  context={**CONTEXT, "thread_id": "omt_1"}))
    assert fake.messages[1]["reply_in_thread"] is True


async def test_same_idempotency_key_sends_once(make_adapter: MakeAdapter,
                                               fake: FakeFeishu) -> None:
    adapter = make_adapter()
    a = await adapter.send(out("once"))
    b = await adapter.send(out("once"))
    assert len(fake.messages) == 1
    assert a.message_id == b.message_id


async def test_markdown_card_and_buttons(make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    adapter = make_adapter()
    await adapter.send(out("**bold**", format="markdown"))
    await adapter.send(out("pick", buttons=(("Yes", "y"),), idempotency_key="k2"))
    await adapter.send(out("", card={"schema": "2.0", "body": {"elements": []}},
                           idempotency_key="k3"))
    types = [m["msg_type"] for m in fake.messages]
    assert types == ["interactive"] * 3
    md = fake.messages[0]["content"]["body"]["elements"][0]
    assert md == {"tag": "markdown", "content": "**bold**"}
    button = fake.messages[1]["content"]["body"]["elements"][1]
    assert button["behaviors"][0]["value"] == {"action": "y"}
    assert fake.messages[2]["content"] == {"schema": "2.0", "body": {"elements": []}}


async def test_image_and_file_uploads(make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    png = base64.b64encode(b"\x89PNG fake").decode()
    pdf = base64.b64encode(b"%PDF fake").decode()
    result = await make_adapter().send(out("see attached", attachments=(
        Segment(type="image", name="a.png", data={"base64": png}),
        Segment(type="file", name="report.pdf", data={"base64": pdf}),
        Segment(type="image", file_id="img_existing"))))
    assert [u["kind"] for u in fake.uploads] == ["image", "file"]
    assert fake.uploads[1]["file_name"] == "report.pdf"
    assert [m["msg_type"] for m in fake.messages] == ["text", "image", "file", "image"]
    assert fake.messages[1]["content"] == {"image_key": fake.uploads[0]["key"]}
    assert fake.messages[3]["content"] == {"image_key": "img_existing"}
    assert len({m["uuid"] for m in fake.messages}) == 4
    assert result.parts == 4


async def test_429_is_retried_after_reset(make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    adapter = make_adapter()
    await adapter.client.tokens.get()
    fake.throttle, fake.throttle_reset = 1, 0.05
    await adapter.send(out("after throttle"))
    assert len(fake.messages) == 1
    assert fake.calls.count("POST /open-apis/im/v1/messages") == 2


async def test_429_maps_to_rate_limited(make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    adapter = make_adapter()
    await adapter.client.tokens.get()
    fake.throttle, fake.throttle_reset = 1, 7
    with pytest.raises(ChannelRateLimited) as err:
        await adapter.client.send_message("oc_chat", "text", {"text": "x"})
    assert (err.value.retry_after, err.value.errcode) == (7.0, 99991400)


async def test_revoked_token_is_refreshed_once(make_adapter: MakeAdapter,
                                               fake: FakeFeishu) -> None:
    adapter = make_adapter()
    await adapter.send(out("first", idempotency_key="a"))
    fake.revoked.add(fake.tokens[0])
    await adapter.send(out("second", idempotency_key="b"))
    assert len(fake.tokens) == 2
    assert len(fake.messages) == 2


async def test_content_error_is_typed_and_not_retried(make_adapter: MakeAdapter,
                                                      fake: FakeFeishu) -> None:
    adapter = make_adapter()
    with pytest.raises(FeishuApiError) as err:
        await adapter.client.send_message("oc_chat", "interactive",
                                          {"type": "card", "data": {"card_id": "nope"}})
    assert err.value.errcode == 230099
    assert fake.calls.count("POST /open-apis/im/v1/messages") == 1


async def test_wrong_app_secret(make_adapter: MakeAdapter) -> None:
    with pytest.raises(FeishuApiError) as err:
        await make_adapter(app_secret="bad").send(out())
    assert err.value.errcode == 10014


async def test_cardkit_stream(make_adapter: MakeAdapter, fake: FakeFeishu) -> None:
    adapter = make_adapter()
    stream = adapter.open_stream(out("", context=CONTEXT))
    assert isinstance(stream, CardStream)
    ticks = iter(float(t) for t in range(100))
    stream._clock = lambda: next(ticks)  # one second per call: never coalesced
    for partial in ("Hel", "Hello", "Hello, wor"):
        await stream.update(partial)
    result = await stream.finish("Hello, world!")
    (card_id, card), = fake.cards.items()
    assert card["card"]["config"]["streaming_mode"] is True
    assert card["contents"] == ["Hel", "Hello", "Hello, wor", "Hello, world!"]
    assert card["sequences"] == sorted(set(card["sequences"])) == [1, 2, 3, 4, 5]
    assert card["streaming_mode"] is False
    (msg,) = fake.messages
    assert msg["content"] == {"type": "card", "data": {"card_id": card_id}}
    assert msg["parent_id"] == "om_in"
    assert result.message_id == msg["message_id"]


async def test_cardkit_updates_are_coalesced(make_adapter: MakeAdapter,
                                             fake: FakeFeishu) -> None:
    stream = make_adapter().open_stream(out("", context=CONTEXT))
    assert isinstance(stream, CardStream)
    now = [0.0]
    stream._clock = lambda: now[0]
    for i in range(30):  # 30 updates within 0.29 s -> at most 3 pushes at 10/s
        now[0] = i * 0.01
        await stream.update("x" * (i + 1))
    await stream.finish("x" * 31)
    contents = next(iter(fake.cards.values()))["contents"]
    assert len(contents) <= 4
    assert contents[-1] == "x" * 31
    assert json.dumps(contents)  # every pushed text is a prefix of the final one
    assert all(("x" * 31).startswith(c) for c in contents)
