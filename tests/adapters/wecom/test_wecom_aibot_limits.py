"""AI bot replies over WeCom's 20480-byte limit (stream content, 101031; response_url
markdown, 101138): the rest follows once through response_url, else it is cut visibly."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from fake_wecom import FakeWeCom
from wecom_testkit import AIBOT_AES, AIBOT_TOKEN, API_BASE, aibot_options, signed_post

from adapters.wecom import WeComAdapter, WXBizMsgCrypt
from adapters.wecom.api import AIBOT_LIMIT, TRUNCATED_MARKER
from botcore.channel import Accepted
from botcore.message import InboundMessage, OutboundMessage

Make = Callable[..., WeComAdapter]
CRYPT = WXBizMsgCrypt(AIBOT_TOKEN, AIBOT_AES, "")
NOW = 1_760_000_000
SENTENCE = "这是一个很长的回答中的一句话。"  # 45 bytes
LONG = SENTENCE * 600  # 27000 bytes: one stream plus one response_url message
HUGE = SENTENCE * 1000  # 45000 bytes: more than the two places WeCom offers


async def _inbound(adapter: WeComAdapter, response_url: bool = True) -> InboundMessage:
    payload: dict[str, Any] = {
        "msgid": "M1", "aibotid": "AIBOTID", "chattype": "single", "from": {"userid": "u1"},
        "msgtype": "text", "text": {"content": "hi"}}
    if response_url:
        payload["response_url"] = f"{API_BASE}/cgi-bin/aibot/response?response_code=RC1"
    outcome = await adapter.handle_webhook(
        signed_post(CRYPT, CRYPT.encrypt(json.dumps(payload)), str(NOW), json_body=True))
    assert isinstance(outcome, Accepted)
    return outcome.messages[0]


def _reply(inbound: InboundMessage, text: str) -> OutboundMessage:
    return OutboundMessage(conversation=inbound.conversation, context=inbound.platform,
                           text=text, idempotency_key="t1:0")


async def test_long_stream_answer_continues_through_response_url(make_adapter: Make,
                                                                 fake: FakeWeCom) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    inbound = await _inbound(adapter)
    result = await adapter.send(_reply(inbound, LONG))
    state = await adapter.replier.read(inbound.platform["stream_id"])
    assert state.finish
    assert len(state.content.encode()) <= AIBOT_LIMIT
    (follow_up,) = fake.aibot_responses
    rest = follow_up["markdown"]["content"]
    assert state.content + rest == LONG  # nothing lost, nothing twice
    assert result.parts == 2
    await adapter.send(_reply(inbound, LONG))  # a re-run of the turn sends nothing again
    assert len(fake.aibot_responses) == 1


async def test_unfinished_stream_shows_at_most_the_limit(make_adapter: Make) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    inbound = await _inbound(adapter)
    stream = adapter.open_stream(_reply(inbound, ""))
    assert stream is not None
    await stream.update(LONG)
    state = await adapter.replier.read(inbound.platform["stream_id"])
    assert not state.finish
    assert 0 < len(state.content.encode()) <= AIBOT_LIMIT
    assert LONG.startswith(state.content)


async def test_answer_beyond_both_places_is_cut_visibly_and_logged(
        make_adapter: Make, fake: FakeWeCom, caplog: pytest.LogCaptureFixture) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    inbound = await _inbound(adapter)
    with caplog.at_level(logging.WARNING, logger="adapters.wecom"):
        await adapter.send(_reply(inbound, HUGE))
    rest = fake.aibot_responses[0]["markdown"]["content"]
    assert len(rest.encode()) <= AIBOT_LIMIT
    assert rest.endswith(TRUNCATED_MARKER)
    assert "bytes not sent" in caplog.text


async def test_response_url_only_answer_is_cut_visibly(make_adapter: Make,
                                                       fake: FakeWeCom) -> None:
    webhook = make_adapter(aibot_options(), now=NOW)
    inbound = await _inbound(webhook)
    late = make_adapter(aibot_options(), now=NOW + 400)  # the stream is no longer polled
    result = await late.send(_reply(inbound, LONG))
    assert result.extra["via"] == "response_url"
    content = fake.aibot_responses[0]["markdown"]["content"]
    assert len(content.encode()) <= AIBOT_LIMIT
    assert content.endswith(TRUNCATED_MARKER)
    assert LONG.startswith(content.removesuffix(TRUNCATED_MARKER))


async def test_without_response_url_the_stream_is_cut_visibly(make_adapter: Make,
                                                              fake: FakeWeCom) -> None:
    adapter = make_adapter(aibot_options(), now=NOW)
    inbound = await _inbound(adapter, response_url=False)
    await adapter.send(_reply(inbound, LONG))
    state = await adapter.replier.read(inbound.platform["stream_id"])
    assert state.finish
    assert len(state.content.encode()) <= AIBOT_LIMIT
    assert state.content.endswith(TRUNCATED_MARKER)
    assert fake.aibot_responses == []
