"""``unsupported`` events (a message the bot cannot read): the adapter's polite answer is
sent by the turn unless the app handles the event itself. Real Redis sessions."""

from __future__ import annotations

from redis.asyncio import Redis

from botcore import BotApp, TurnContext
from botcore.ingress.inbox import Envelope
from botcore.testing import RecordingAdapter, make_inbound
from botcore.testing.turns import turn_runner


def _event(**data: str) -> Envelope:
    return Envelope.wrap(make_inbound("", channel="recording", bot_id="t", kind="event",
                                      event_type="unsupported",
                                      event_data={"msgtype": "file", **data}))


async def test_the_adapters_answer_is_sent(redis: Redis) -> None:
    adapter = RecordingAdapter()
    await turn_runner(redis, adapter, BotApp("t")).run([_event(reply="Text only, please.")], 1)
    assert adapter.texts == ["Text only, please."]


async def test_the_apps_handler_wins(redis: Redis) -> None:
    app = BotApp("t")

    @app.event("unsupported")
    async def files(ctx: TurnContext) -> None:
        await ctx.reply(f"Got your {ctx.message.event_data['msgtype']}; an agent will look.")

    adapter = RecordingAdapter()
    await turn_runner(redis, adapter, app).run([_event(reply="Text only, please.")], 1)
    assert adapter.texts == ["Got your file; an agent will look."]


async def test_without_an_answer_nothing_is_sent(redis: Redis) -> None:
    adapter = RecordingAdapter()
    await turn_runner(redis, adapter, BotApp("t")).run([_event()], 1)
    assert adapter.texts == []
