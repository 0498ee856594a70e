"""A bot for the OpenAI API and widget tests: reports its history, streams on demand."""

from __future__ import annotations

import asyncio

from botcore import BotApp, TurnContext

app = BotApp("memory", apology="sorry, that failed")


@app.message(regex=r"^stream (?P<words>.+)")
async def stream(ctx: TurnContext) -> None:
    """Write the words one by one, with a pause, as one streamed markdown answer."""
    assert ctx.match is not None
    async with await ctx.stream(format="markdown") as out:
        for index, word in enumerate(ctx.match["words"].split()):
            await out.write(("" if index == 0 else " ") + word)
            await asyncio.sleep(0.12)


@app.message()
async def remember(ctx: TurnContext) -> None:
    """Say how many history entries the session held before this turn, and the text."""
    history = await ctx.session.history()
    users = [entry.content for entry in history if entry.role == "user"]
    await ctx.reply(f"history={len(history)} users={'|'.join(users)} you said: {ctx.text}")
