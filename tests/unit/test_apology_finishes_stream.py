"""A turn that fails in the middle of a streamed answer: the apology finishes that message
(no half answer left "typing" on screen); without one begun, it is a message of its own.
Real Redis; the adapter records what a platform would show."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from botcore import BotApp, TurnContext
from botcore.channel import MessageStream
from botcore.ingress.inbox import Envelope
from botcore.message import OutboundMessage, SendResult
from botcore.testing import RecordingAdapter, make_inbound
from botcore.testing.turns import turn_runner
from botcore.turns import TurnRunner


class _Screen:
    """One message per idempotency key, edited in place, like a Feishu card."""

    def __init__(self) -> None:
        self.messages: dict[str, list[str]] = {}
        self.finished: set[str] = set()


class _Stream:
    def __init__(self, screen: _Screen, key: str) -> None:
        self.screen, self.key = screen, key

    async def update(self, text: str) -> None:
        self.screen.messages.setdefault(self.key, []).append(text)

    async def finish(self, text: str) -> SendResult:
        self.screen.messages.setdefault(self.key, []).append(text)
        self.screen.finished.add(self.key)
        return SendResult(message_id=self.key)


class StreamingAdapter(RecordingAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.screen = _Screen()

    def open_stream(self, message: OutboundMessage) -> MessageStream | None:
        return _Stream(self.screen, str(message.idempotency_key))


def _runner(redis: Redis, adapter: StreamingAdapter, app: BotApp, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> TurnRunner:
    return turn_runner(redis, adapter, app)


async def test_apology_finishes_the_half_written_answer(redis: Redis, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    app = BotApp("t", apology="Sorry, that failed. Please try again.")

    @app.message()
    async def answer(ctx: TurnContext) -> None:
        async with await ctx.stream() as out:
            await out.write("The refund takes")
            raise RuntimeError("model connection dropped")

    adapter = StreamingAdapter()
    runner = _runner(redis, adapter, app, tmp_path, monkeypatch)
    entry = Envelope.wrap(make_inbound("refund?", channel="recording", bot_id="t"))
    with pytest.raises(RuntimeError, match="model connection dropped"):
        await runner.run([entry], attempt=1)
    (key,) = adapter.screen.messages
    assert adapter.screen.messages[key] == ["The refund takes"]
    assert key not in adapter.screen.finished            # left "typing"
    await runner.apologize(entry, RuntimeError("model connection dropped"))
    assert list(adapter.screen.messages) == [key]         # the same message, not a new one
    assert adapter.screen.messages[key][-1] == "Sorry, that failed. Please try again."
    assert key in adapter.screen.finished
    assert adapter.sent == []
    await runner.apologize(entry, None)                   # a second apology: nothing more
    assert adapter.screen.messages[key].count("Sorry, that failed. Please try again.") == 1


async def test_apology_without_a_begun_reply_is_its_own_message(
        redis: Redis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = BotApp("t", apology="Sorry!")

    @app.message()
    async def answer(ctx: TurnContext) -> None:
        raise RuntimeError("before any reply")

    adapter = StreamingAdapter()
    runner = _runner(redis, adapter, app, tmp_path, monkeypatch)
    entry = Envelope.wrap(make_inbound("hi", channel="recording", bot_id="t"))
    with pytest.raises(RuntimeError):
        await runner.run([entry], attempt=1)
    await runner.apologize(entry, None)
    await runner.apologize(entry, None)
    assert adapter.texts == ["Sorry!"]
    assert adapter.screen.messages == {}


async def test_error_hooks_see_which_attempt_failed(redis: Redis, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    app = BotApp("t")
    seen: list[int] = []

    @app.message()
    async def answer(ctx: TurnContext) -> None:
        raise RuntimeError("down")

    @app.error
    async def alert(ctx: TurnContext, exc: BaseException) -> bool:
        seen.append(ctx.attempt)
        return False

    runner = _runner(redis, StreamingAdapter(), app, tmp_path, monkeypatch)
    entry = Envelope.wrap(make_inbound("hi", channel="recording", bot_id="t"))
    for attempt in (1, 2, 3):
        with pytest.raises(RuntimeError):
            await runner.run([entry], attempt=attempt)
    assert seen == [1, 2, 3]
