"""The adapter's optional ``typing_indicator`` is held for exactly the length of a message
turn (real Redis sessions; the adapter is botcore.testing's recording one)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from botcore import BotApp, TurnContext
from botcore.ingress.inbox import Envelope
from botcore.message import OutboundMessage
from botcore.testing import RecordingAdapter, make_inbound
from botcore.testing.turns import turn_runner
from botcore.turns import TurnRunner


class TypingAdapter(RecordingAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.log: list[str] = []

    @contextlib.asynccontextmanager
    async def typing_indicator(self, message: OutboundMessage) -> AsyncIterator[None]:
        self.log.append(f"typing on {message.conversation.chat_id} {message.context}")
        try:
            yield
        finally:
            self.log.append("typing off")


def _runner(redis: Redis, adapter: TypingAdapter, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> TurnRunner:
    app = BotApp("typing")

    @app.message()
    async def answer(ctx: TurnContext) -> None:
        adapter.log.append("handler")
        await ctx.reply("done")

    @app.event("member_joined")
    async def joined(ctx: TurnContext) -> None:
        adapter.log.append("event handler")

    return turn_runner(redis, adapter, app)


async def test_typing_is_shown_around_a_message_turn(redis: Redis, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = TypingAdapter()
    runner = _runner(redis, adapter, tmp_path, monkeypatch)
    message = make_inbound("hi", channel="recording", bot_id="t", chat_id="c9",
                           platform={"chat_id": 9})
    await runner.run([Envelope.wrap(message)], attempt=1)
    assert adapter.log == ["typing on c9 {'chat_id': 9}", "handler", "typing off"]
    assert adapter.texts == ["done"]


async def test_typing_is_off_when_the_handler_raises(redis: Redis, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = TypingAdapter()
    runner = _runner(redis, adapter, tmp_path, monkeypatch)

    async def broken(message: OutboundMessage) -> None:
        raise RuntimeError("platform down")

    adapter.send = broken  # type: ignore[assignment,method-assign]
    message = make_inbound("hi", channel="recording", bot_id="t")
    with pytest.raises(RuntimeError, match="platform down"):
        await runner.run([Envelope.wrap(message)], attempt=1)
    assert adapter.log[-1] == "typing off"


async def test_events_get_no_typing(redis: Redis, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = TypingAdapter()
    runner = _runner(redis, adapter, tmp_path, monkeypatch)
    event = make_inbound("", channel="recording", bot_id="t", kind="event",
                         event_type="member_joined")
    await runner.run([Envelope.wrap(event)], attempt=1)
    assert adapter.log == ["event handler"]
