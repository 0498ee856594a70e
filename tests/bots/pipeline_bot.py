"""A bot for the pipeline tests: echoes, sleeps on demand, fails on demand."""

from __future__ import annotations

import asyncio
import random

from botcore import BotApp, TurnContext

app = BotApp("pipeline", apology="sorry, that failed")


@app.message(regex=r"^slow (?P<ms>\d+)")
async def slow(ctx: TurnContext) -> None:
    """Mark the turn as started, sleep, then answer (the kill test stops us mid-sleep)."""
    assert ctx.match is not None
    await ctx.session.set("started", ctx.message.event_id)
    await asyncio.sleep(int(ctx.match["ms"]) / 1000)
    await ctx.reply(f"done {ctx.text}")


@app.message(regex=r"^boom")
async def boom(ctx: TurnContext) -> None:
    """Always fails."""
    raise RuntimeError("boom on purpose")


@app.message()
async def echo(ctx: TurnContext) -> None:
    """Answer after a random short delay (so out-of-order processing would show)."""
    await asyncio.sleep(random.uniform(0, 0.01))
    await ctx.reply(f"echo: {ctx.text}")
