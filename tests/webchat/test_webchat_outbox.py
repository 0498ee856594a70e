"""send() and open_stream() write the conversation's Redis stream (real Redis)."""

from __future__ import annotations

import asyncio
import json
import time

from redis.asyncio import Redis

from botcore.message import OutboundMessage
from botcore.webchat import OUTBOX_TTL, WebChatAdapter, WebChatStream, web_conversation

CONV = web_conversation("demo", "c1")


async def entries(redis: Redis, adapter: WebChatAdapter) -> list[tuple[str, dict[str, str]]]:
    raw = await redis.xrange(adapter.outbox_key(CONV))
    return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in raw]


async def test_send_appends_a_message_event(writer: WebChatAdapter, redis: Redis) -> None:
    message = OutboundMessage(conversation=CONV, text="**hi** <b>", format="markdown",
                              reply_to="m-1", buttons=(("Yes", "yes"), ("Docs", "https://x")),
                              idempotency_key="k1")
    result = await writer.send(message)
    (entry_id, event), = await entries(redis, writer)
    assert result.message_id == entry_id
    assert event == {"type": "message", "id": "k1", "text": "**hi** <b>", "format": "markdown",
                     "reply_to": "m-1", "buttons": json.dumps([["Yes", "yes"],
                                                               ["Docs", "https://x"]])}
    ttl = await redis.ttl(writer.outbox_key(CONV))
    assert 0 < ttl <= OUTBOX_TTL
    assert writer.outbox_key(CONV) == "test:webout:{web:demo:c1}"


async def test_a_reply_sent_again_after_a_crash_is_shown_once(writer: WebChatAdapter,
                                                               redis: Redis) -> None:
    # A worker killed after the platform write but before the reply was recorded as done
    # re-runs the turn: the same reply (same idempotency key) comes again.
    message = OutboundMessage(conversation=CONV, text="once", idempotency_key="k-crash")
    first = await writer.send(message)
    second = await writer.send(message)
    assert second.message_id == first.message_id
    assert [event["text"] for _, event in await entries(redis, writer)] == ["once"]
    stream = writer.open_stream(OutboundMessage(conversation=CONV, idempotency_key="s-crash"))
    again = writer.open_stream(OutboundMessage(conversation=CONV, idempotency_key="s-crash"))
    assert stream is not None
    assert again is not None
    await stream.finish("streamed")
    await again.finish("streamed")
    assert [event["text"] for _, event in await entries(redis, writer)] == ["once", "streamed"]


async def test_each_send_gets_a_new_increasing_id(writer: WebChatAdapter, redis: Redis) -> None:
    first = await writer.send(OutboundMessage(conversation=CONV, text="a"))
    second = await writer.send(OutboundMessage(conversation=CONV, text="b"))
    events = await entries(redis, writer)
    assert [e[0] for e in events] == [first.message_id, second.message_id]
    assert events[0][1]["id"] != events[1][1]["id"]  # no idempotency key: a fresh id each
    assert events[1][1]["reply_to"] == ""
    assert events[1][1]["buttons"] == "[]"


async def test_history_is_trimmed_near_history_limit(writer: WebChatAdapter,
                                                     redis: Redis) -> None:
    writer.config.history_limit = 10
    for n in range(400):
        await writer.send(OutboundMessage(conversation=CONV, text=str(n)))
    length = await redis.xlen(writer.outbox_key(CONV))
    assert length < 150  # MAXLEN ~ trims whole stream nodes (100 entries by default)
    last = await redis.xrevrange(writer.outbox_key(CONV), count=1)
    assert last[0][1][b"text"] == b"399"


async def test_stream_writes_deltas_then_a_final_message(writer: WebChatAdapter,
                                                         redis: Redis) -> None:
    template = OutboundMessage(conversation=CONV, format="markdown", idempotency_key="s1")
    stream = writer.open_stream(template)
    assert isinstance(stream, WebChatStream)
    stream.clock = lambda: 100.0          # frozen: the next updates are within 50 ms
    await stream.update("Hel")            # written at once
    await stream.update("Hello")          # within 50 ms: held back...
    await stream.update("Hello, wor")     # ...and replaced by this one
    events = await entries(redis, writer)
    assert [e[1]["text"] for e in events] == ["Hel"]
    assert events[0][1] == {"type": "delta", "stream_id": "s1", "text": "Hel",
                            "format": "markdown"}
    await asyncio.sleep(0.15)             # the held-back text is flushed
    assert [e[1]["text"] for e in await entries(redis, writer)] == ["Hel", "Hello, wor"]

    result = await stream.finish("Hello, world!")
    events = await entries(redis, writer)
    assert len(events) == 1, "the stream's deltas are removed once it is finished"
    entry_id, final = events[0]
    assert result.message_id == entry_id
    assert result.extra == {"stream_id": "s1"}
    assert final["type"] == "message"
    assert final["stream_id"] == "s1"
    assert final["text"] == "Hello, world!"


async def test_updates_are_coalesced_to_about_20_per_second(writer: WebChatAdapter,
                                                           redis: Redis) -> None:
    stream = writer.open_stream(OutboundMessage(conversation=CONV))
    assert stream is not None
    started = time.monotonic()
    text = ""
    while time.monotonic() - started < 0.5:
        text += "x"
        await stream.update(text)
        await asyncio.sleep(0.002)
    await asyncio.sleep(0.1)
    written = [e[1]["text"] for e in await entries(redis, writer)]
    assert 3 <= len(written) <= 14, len(written)   # ~10 expected; far fewer than updates
    assert len(text) > 2 * len(written)
    assert written[-1] == text                      # the last text is never lost
    await stream.finish(text)


async def test_finish_right_after_an_update_leaves_no_stray_delta(writer: WebChatAdapter,
                                                                  redis: Redis) -> None:
    stream = writer.open_stream(OutboundMessage(conversation=CONV))
    assert stream is not None
    await stream.update("a")
    await stream.update("ab")   # pending
    await stream.finish("abc")
    await asyncio.sleep(0.1)    # a flush that would fire late has nothing to write
    events = await entries(redis, writer)
    assert [(e[1]["type"], e[1]["text"]) for e in events] == [("message", "abc")]
    await stream.update("late")  # ignored after finish
    assert len(await entries(redis, writer)) == 1
