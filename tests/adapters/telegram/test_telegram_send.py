"""Outbound through the fake Bot API: splitting, escaping, errors, buttons, media."""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import MakeAdapter
from fake_telegram import FakeTelegram, parse_html, utf16_len

from adapters.telegram import TelegramAdapter
from adapters.telegram.api import Limits
from adapters.telegram.errors import TelegramApiError, TelegramAuthError
from botcore.errors import ChannelAuthError, ChannelUnavailable
from botcore.message import ConversationKey, OutboundMessage, Segment

PRIVATE_ID = 1111
GROUP_ID = -1001234567890


def out(text: str = "hi", chat_id: int = PRIVATE_ID, **fields: Any) -> OutboundMessage:
    context = {"chat_id": chat_id, "chat_type": "private" if chat_id > 0 else "supergroup",
               "message_thread_id": None, "bot_username": "botcore_bot"}
    context.update(fields.pop("context", {}))
    return OutboundMessage(
        conversation=ConversationKey(channel="telegram", bot_id="tg", chat_id=str(chat_id)),
        text=text, context=context, **fields)


def model_answer() -> str:
    """A ~5,000-character answer with <, &, * and emoji, in paragraphs."""
    paragraphs = []
    for i in range(15):
        sentences = [f"Step {i}.{j}: if a < b && b > c then *x* = a * b 🚀🙂 is fine." for j in
                     range(6)]
        paragraphs.append(" ".join(sentences))
    text = "\n\n".join(paragraphs)
    assert 5000 <= len(text) <= 6000
    return text


async def test_long_answer_split_and_escaped(adapter: TelegramAdapter,
                                             fake: FakeTelegram) -> None:
    text = model_answer()
    result = await adapter.send(out(text))
    calls = fake.calls_to("sendMessage")
    assert result.parts == len(calls) == 2
    for call in calls:
        assert call["parse_mode"] == "HTML"
        assert utf16_len(call["text"]) <= 4096
        assert "&lt;" in call["text"]
        assert "&amp;&amp;" in call["text"]
    plain = [parse_html(call["text"]) for call in calls]
    assert "".join("".join(plain).split()) == "".join(text.split())
    assert plain[0].endswith("is fine.")  # split at a paragraph boundary
    assert fake.texts(PRIVATE_ID) == plain
    assert result.message_id == str(result.extra["message_ids"][0])


async def test_markdown_answer_renders_html(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    await adapter.send(out("**Total**: `2 < 3` & done", format="markdown"))
    (call,) = fake.calls_to("sendMessage")
    assert call["text"] == "<b>Total</b>: <code>2 &lt; 3</code> &amp; done"


async def test_reply_buttons_and_thread(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    message = out("Pick", chat_id=GROUP_ID, reply_to="41",
                  buttons=(("Yes", "answer:yes"), ("Docs", "https://example.com/docs")),
                  context={"message_thread_id": 77})
    await adapter.send(message)
    (call,) = fake.calls_to("sendMessage")
    assert call["reply_parameters"] == {"message_id": 41, "allow_sending_without_reply": True}
    assert call["message_thread_id"] == 77
    assert call["reply_markup"] == {"inline_keyboard": [
        [{"text": "Yes", "callback_data": "answer:yes"}],
        [{"text": "Docs", "url": "https://example.com/docs"}]]}


async def test_callback_data_over_64_bytes_is_refused_before_sending(
        adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    with pytest.raises(Exception, match="1-64 bytes"):
        await adapter.send(out("x", buttons=(("Long", "é" * 40),)))
    assert fake.calls == []


async def test_attachments(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    message = out("Here you go", attachments=(
        Segment(type="image", file_id="AgACphoto", text="a <chart>"),
        Segment(type="file", url="https://example.com/r.pdf")), buttons=(("Ok", "ok"),))
    result = await adapter.send(message)
    assert result.parts == 3
    assert fake.calls_to("sendMessage")[0].get("reply_markup") is None
    (photo,) = fake.calls_to("sendPhoto")
    assert photo["photo"] == "AgACphoto"
    assert photo["caption"] == "a &lt;chart&gt;"
    (doc,) = fake.calls_to("sendDocument")
    assert doc["document"] == "https://example.com/r.pdf"
    assert doc["reply_markup"] == {"inline_keyboard": [[{"text": "Ok", "callback_data": "ok"}]]}


async def test_429_retry_after_is_honoured(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 429, retry_after=1)
    started = time.monotonic()
    result = await adapter.send(out("hello"))
    assert time.monotonic() - started >= 0.95
    assert result.parts == 1
    attempts = [c for c in fake.calls if c.method == "sendMessage"]
    assert len(attempts) == 2
    assert attempts[1].at - attempts[0].at >= 0.95


async def test_migrated_group_is_followed_once(adapter: TelegramAdapter,
                                               fake: FakeTelegram) -> None:
    fake.migrate(-4001, -1004001)
    result = await adapter.send(out("a\n\n" + "b" * 4100, chat_id=-4001))
    chats = [call["chat_id"] for call in fake.calls_to("sendMessage")]
    assert chats == [-4001, -1004001, -1004001, -1004001]  # a, 4096 b, 4 b
    assert result.extra["migrated_to_chat_id"] == -1004001


async def test_5xx_then_success_is_retried(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 502)
    assert (await adapter.send(out("x"))).parts == 1
    assert len(fake.calls_to("sendMessage")) == 2


async def test_5xx_and_network_errors_are_unavailable(adapter: TelegramAdapter,
                                                      fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 500)
    with pytest.raises(ChannelUnavailable):
        await adapter.client.call("sendMessage", {"chat_id": 1, "text": "x"})

    import httpx

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down")

    adapter.client._http = httpx.AsyncClient(transport=httpx.MockTransport(boom))
    with pytest.raises(ChannelUnavailable) as info:
        await adapter.client.call("sendMessage", {"chat_id": 1, "text": "x"})
    assert "AAH" not in str(info.value)  # the token (in the URL) never leaks


async def test_bad_request_is_a_content_error_not_retried(adapter: TelegramAdapter,
                                                          fake: FakeTelegram) -> None:
    fake.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
    with pytest.raises(TelegramApiError) as info:
        await adapter.send(out("x"))
    assert info.value.errcode == 403
    assert len(fake.calls_to("sendMessage")) == 1


async def test_refused_token_is_a_config_error(make_adapter: MakeAdapter,
                                               fake: FakeTelegram) -> None:
    adapter = make_adapter(token="42:WRONGsecret")
    with pytest.raises(TelegramAuthError) as info:
        await adapter.send(out("x"))
    assert isinstance(info.value, ChannelAuthError)
    assert "bots.tg.token" in str(info.value)
    assert "WRONGsecret" not in str(info.value)


async def test_idempotent_resend_skips_delivered_parts(adapter: TelegramAdapter,
                                                       fake: FakeTelegram) -> None:
    message = out("p1\n\n" + "z" * 4100, idempotency_key="evt-1:0")
    first = await adapter.send(message)
    again = await adapter.send(message)  # e.g. the worker retried the turn
    assert first.parts == 3
    assert len(fake.calls_to("sendMessage")) == 3
    assert again.extra["message_ids"] == first.extra["message_ids"]


async def test_callback_is_answered_on_send(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    await adapter.send(out("done", context={"callback_query_id": "cbq-1"}))
    assert fake.calls_to("answerCallbackQuery") == [{"callback_query_id": "cbq-1"}]
    assert [c.method for c in fake.calls] == ["answerCallbackQuery", "sendMessage"]


async def test_typing_action(adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    await adapter.send_chat_action(out(chat_id=GROUP_ID, context={"message_thread_id": 9}))
    assert fake.calls_to("sendChatAction") == [
        {"chat_id": GROUP_ID, "action": "typing", "message_thread_id": 9}]


async def test_per_chat_rate_limit_paces_sends(make_adapter: MakeAdapter,
                                               fake: FakeTelegram) -> None:
    adapter = make_adapter(limits=Limits(per_chat=(2.0, 1.0)))
    started = time.monotonic()
    for text in ("one", "two", "three"):
        await adapter.send(out(text))
    assert time.monotonic() - started >= 0.9  # 3 sends at 2/s with a burst of 1
    assert fake.texts(PRIVATE_ID) == ["one", "two", "three"]
