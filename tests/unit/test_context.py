"""TurnContext: replies and streams through the IdempotentReplier (real Redis)."""

from __future__ import annotations

from redis.asyncio import Redis

from botcore.app import BotApp
from botcore.context import TurnContext
from botcore.ingress.replier import IdempotentReplier
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage, OutboundMessage, SendResult
from botcore.sessions import Session
from botcore.sessions.memory import InMemorySessionStore
from botcore.settings import BotConfig
from botcore.testing import RecordingAdapter, make_inbound


class _StreamingAdapter(RecordingAdapter):
    """A RecordingAdapter whose platform can edit a message in place."""

    def __init__(self) -> None:
        super().__init__()
        self.updates: list[str] = []
        self.finished: list[str] = []

    def open_stream(self, message: OutboundMessage) -> _Stream:
        return _Stream(self)


class _Stream:
    def __init__(self, adapter: _StreamingAdapter) -> None:
        self._adapter = adapter

    async def update(self, text: str) -> None:
        self._adapter.updates.append(text)

    async def finish(self, text: str) -> SendResult:
        self._adapter.finished.append(text)
        return SendResult(message_id="s1")


def _ctx(message: InboundMessage, replier: IdempotentReplier) -> TurnContext:
    return TurnContext(message=message,
                       session=Session(InMemorySessionStore(), message.conversation),
                       bot=BotConfig(id="bot", channel="web", app="tests.x:app"),
                       app=BotApp(), replier=replier)


def _message() -> InboundMessage:
    return make_inbound("hi", event_id="evt-ctx", platform={"session_webhook": "https://x"})


async def test_reply_builds_outbound_message(redis: Redis, keys: KeyBuilder) -> None:
    adapter = RecordingAdapter()
    message = _message()
    ctx = _ctx(message, IdempotentReplier(adapter, redis, keys))
    result = await ctx.reply("**one**", format="markdown", buttons=[("Yes", "y")])
    await ctx.reply("two")
    assert result.message_id == "1"
    first, second = adapter.sent
    assert first.text == "**one**"
    assert first.format == "markdown"
    assert first.buttons == (("Yes", "y"),)
    assert first.reply_to == message.message_id
    assert first.conversation == message.conversation
    assert dict(first.context) == {"session_webhook": "https://x"}
    assert first.idempotency_key
    assert first.idempotency_key != second.idempotency_key
    assert ctx.replies == ["**one**", "two"]


async def test_reply_keys_are_stable_across_runs(redis: Redis, keys: KeyBuilder) -> None:
    message = _message()
    run1, run2 = RecordingAdapter(), RecordingAdapter()
    for adapter in (run1, run2):
        ctx = _ctx(message, IdempotentReplier(adapter, redis, keys))
        await ctx.reply("a")
        await ctx.reply("b")
    # the second run of the same turn sends nothing again...
    assert run1.texts == ["a", "b"]
    assert run2.texts == []
    # ...because the keys are the same: (dedupe key, index)
    expected = [OutboundMessage.make_key(message.dedupe_key, i) for i in (1, 2)]
    assert [m.idempotency_key for m in run1.sent] == expected
    assert await redis.get(keys.sent(expected[0])) == b"done"


async def test_reply_keys_differ_between_events(redis: Redis, keys: KeyBuilder) -> None:
    adapter = RecordingAdapter()
    for event_id in ("e1", "e2"):
        ctx = _ctx(make_inbound("x", event_id=event_id), IdempotentReplier(adapter, redis, keys))
        await ctx.reply("same text")
    assert adapter.texts == ["same text", "same text"]
    assert adapter.sent[0].idempotency_key != adapter.sent[1].idempotency_key


async def test_stream_writes_sets_and_finishes(redis: Redis, keys: KeyBuilder) -> None:
    adapter = _StreamingAdapter()
    ctx = _ctx(_message(), IdempotentReplier(adapter, redis, keys))
    async with await ctx.stream() as out:
        await out.write("Hel")
        await out.write("")
        await out.write("lo")
        await out.set("Hello!")
    assert adapter.updates == ["Hel", "Hello", "Hello!"]
    assert adapter.finished == ["Hello!"]
    assert out.finished
    assert ctx.replies == ["Hello!"]
    await out.finish()  # idempotent
    assert adapter.finished == ["Hello!"]


async def test_stream_second_run_sends_nothing(redis: Redis, keys: KeyBuilder) -> None:
    message = _message()
    first, second = _StreamingAdapter(), _StreamingAdapter()
    for adapter in (first, second):
        ctx = _ctx(message, IdempotentReplier(adapter, redis, keys))
        out = await ctx.stream()
        await out.write("answer")
        await out.finish()
    assert first.finished == ["answer"]
    assert second.updates == []
    assert second.finished == []
    key = OutboundMessage.make_key(message.dedupe_key, 1)
    assert await redis.get(keys.sent(key)) == b"done"
    assert await redis.ttl(keys.sent(key)) > 0


async def test_stream_and_reply_share_the_index(redis: Redis, keys: KeyBuilder) -> None:
    message = _message()
    first, second = _StreamingAdapter(), _StreamingAdapter()
    for adapter in (first, second):
        ctx = _ctx(message, IdempotentReplier(adapter, redis, keys))
        await ctx.reply("before")
        out = await ctx.stream()
        await out.set("streamed")
        await out.finish()
    assert first.texts == ["before"]
    assert first.finished == ["streamed"]
    assert second.texts == []
    assert second.finished == []


async def test_buffered_stream_sends_once_at_finish(redis: Redis, keys: KeyBuilder) -> None:
    adapter = RecordingAdapter()  # open_stream() is None: botcore buffers
    message = _message()
    ctx = _ctx(message, IdempotentReplier(adapter, redis, keys))
    out = await ctx.stream()
    await out.write("part 1, ")
    await out.write("part 2")
    assert adapter.sent == []
    await out.finish()
    await out.finish()
    assert adapter.texts == ["part 1, part 2"]
    sent = adapter.sent[0]
    assert sent.format == "markdown"
    assert sent.reply_to == message.message_id
    # a re-run does not send it again
    rerun = RecordingAdapter()
    ctx2 = _ctx(message, IdempotentReplier(rerun, redis, keys))
    out2 = await ctx2.stream()
    await out2.write("part 1, part 2")
    await out2.finish()
    assert rerun.sent == []


async def test_stream_context_manager_without_text_sends_nothing(
        redis: Redis, keys: KeyBuilder) -> None:
    adapter = RecordingAdapter()
    ctx = _ctx(_message(), IdempotentReplier(adapter, redis, keys))
    async with await ctx.stream():
        pass
    assert adapter.sent == []
    assert ctx.replies == []


async def test_replier_counts_skips(redis: Redis, keys: KeyBuilder) -> None:
    message = _message()
    replier = IdempotentReplier(RecordingAdapter(), redis, keys)
    await _ctx(message, replier).reply("x")
    assert replier.skipped == 0
    await _ctx(message, replier).reply("x")
    assert replier.skipped == 1
