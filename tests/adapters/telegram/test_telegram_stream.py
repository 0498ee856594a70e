"""Streamed answers: drafts in private chats, throttled edits in groups."""

from __future__ import annotations

from typing import Any

from fake_telegram import FakeTelegram, parse_html
from test_telegram_send import GROUP_ID, PRIVATE_ID, out

from adapters.telegram import TelegramAdapter
from adapters.telegram._stream import DraftStream, EditStream


class Clock:
    """A hand-driven monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def with_clock(adapter: TelegramAdapter) -> Clock:
    clock = Clock()
    adapter.clock = clock
    return clock


async def test_private_stream_drafts_then_send_message(adapter: TelegramAdapter,
                                                       fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    stream = adapter.open_stream(out("", idempotency_key="evt-9:0"))
    assert isinstance(stream, DraftStream)
    for text in ("Hel", "Hello <wor", "Hello <world> & fr", "Hello <world> & friends"):
        await stream.update(text)
        clock.now += 0.4  # faster than the 1 s interval: some updates are skipped
    result = await stream.finish("Hello <world> & friends!")
    drafts = fake.calls_to("sendMessageDraft")
    assert [d["text"] for d in drafts] == ["Hel", "Hello &lt;world&gt; &amp; friends"]
    assert len({d["draft_id"] for d in drafts}) == 1
    assert drafts[0]["draft_id"] > 0
    assert all(d["chat_id"] == PRIVATE_ID for d in drafts)
    (final,) = fake.calls_to("sendMessage")
    assert parse_html(final["text"]) == "Hello <world> & friends!"
    assert [c.method for c in fake.calls][-1] == "sendMessage"
    assert result.parts == 1


async def test_draft_429_skips_previews_without_blocking(adapter: TelegramAdapter,
                                                         fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    stream = adapter.open_stream(out(""))
    assert stream is not None
    fake.fail_next("sendMessageDraft", 429, retry_after=30)
    await stream.update("a")
    clock.now += 5
    await stream.update("ab")  # still inside retry_after: skipped
    clock.now += 30
    await stream.update("abc")
    assert [d["text"] for d in fake.calls_to("sendMessageDraft")] == ["a", "abc"]


async def test_drafts_unsupported_fall_back_to_one_message(adapter: TelegramAdapter,
                                                           fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    stream = adapter.open_stream(out(""))
    assert stream is not None
    fake.fail_next("sendMessageDraft", 400, "Bad Request: method not available")
    for text in ("a", "ab", "abc"):
        await stream.update(text)
        clock.now += 2
    await stream.finish("abcd")
    assert len(fake.calls_to("sendMessageDraft")) == 1
    assert fake.texts(PRIVATE_ID) == ["abcd"]


async def test_group_stream_sends_then_edits_at_most_once_per_second(
        adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    stream = adapter.open_stream(out("", chat_id=GROUP_ID, reply_to="41",
                                     buttons=(("More", "more"),)))
    assert isinstance(stream, EditStream)
    await stream.update("The answer")
    clock.now += 0.3
    await stream.update("The answer is")       # throttled
    clock.now += 0.8
    await stream.update("The answer is 4")
    clock.now += 1.0
    await stream.update("The answer is 4")     # same text: nothing to edit
    result = await stream.finish("The answer is 4.")
    (sent,) = fake.calls_to("sendMessage")
    assert sent["text"] == "The answer"
    assert sent["reply_parameters"]["message_id"] == 41
    assert "reply_markup" not in sent
    edits = fake.calls_to("editMessageText")
    assert [e["text"] for e in edits] == ["The answer is 4", "The answer is 4."]
    assert edits[-1]["reply_markup"] == {"inline_keyboard": [[{"text": "More",
                                                                "callback_data": "more"}]]}
    assert fake.texts(GROUP_ID) == ["The answer is 4."]
    assert result.message_id == str(sent and result.extra["message_ids"][0])


async def test_not_modified_counts_as_success(adapter: TelegramAdapter,
                                              fake: FakeTelegram) -> None:
    with_clock(adapter)
    stream = adapter.open_stream(out("", chat_id=GROUP_ID))
    assert stream is not None
    await stream.update("same")
    fake.fail_next("editMessageText", 400, "Bad Request: message is not modified: specified "
                   "new message content and reply markup are exactly the same")
    result = await stream.finish("same, edited")
    assert result.parts == 1
    assert len(fake.calls_to("editMessageText")) == 1


async def test_group_stream_continues_in_a_new_message(adapter: TelegramAdapter,
                                                       fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    stream = adapter.open_stream(out("", chat_id=GROUP_ID))
    assert stream is not None
    first = "First paragraph. " * 200
    await stream.update(first)
    clock.now += 2
    long_text = first + "\n\n" + "Second paragraph < more. " * 120
    await stream.update(long_text)
    result = await stream.finish(long_text + "End.")
    assert result.parts == 2
    texts = fake.texts(GROUP_ID)
    assert len(texts) == 2
    assert texts[1].endswith("more. End.")
    assert "".join("".join(texts).split()) == "".join((long_text + "End.").split())


async def test_group_stream_finish_without_updates_sends_normally(
        adapter: TelegramAdapter, fake: FakeTelegram) -> None:
    stream = adapter.open_stream(out("", chat_id=GROUP_ID))
    assert stream is not None
    await stream.finish("only at the end")
    assert fake.texts(GROUP_ID) == ["only at the end"]
    assert fake.calls_to("editMessageText") == []


async def test_group_stream_follows_migration(adapter: TelegramAdapter,
                                              fake: FakeTelegram) -> None:
    with_clock(adapter)
    fake.migrate(-4001, -1004001)
    stream = adapter.open_stream(out("", chat_id=-4001))
    assert stream is not None
    await stream.update("x")
    result: Any = await stream.finish("xy")
    assert result.extra["chat_id"] == -1004001
    assert fake.texts(-1004001) == ["xy"]


async def test_group_stream_answers_the_button_press_once(adapter: TelegramAdapter,
                                                          fake: FakeTelegram) -> None:
    clock = with_clock(adapter)
    stream = adapter.open_stream(out("", chat_id=GROUP_ID,
                                     context={"callback_query_id": "cbq-7"}))
    assert stream is not None
    await stream.update("a")
    clock.now += 2
    await stream.update("ab")
    await stream.finish("abc")
    assert fake.calls_to("answerCallbackQuery") == [{"callback_query_id": "cbq-7"}]
    assert fake.calls[0].method == "answerCallbackQuery"
