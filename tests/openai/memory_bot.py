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


@app.message(regex=r"^conv\b")
async def conversation(ctx: TurnContext) -> None:
    """Name the conversation this message landed in."""
    await ctx.reply(f"conversation={ctx.message.conversation.chat_id}")


@app.message(regex=r"^silent\b")
async def silent(ctx: TurnContext) -> None:
    """Answer nothing."""


@app.message(regex=r"^fail after (?P<words>.+)")
async def fail_after(ctx: TurnContext) -> None:
    """Stream a partial answer, then fail (the user gets the apology)."""
    assert ctx.match is not None
    out = await ctx.stream()
    await out.write(ctx.match["words"])
    raise RuntimeError("failed mid-answer on purpose")


@app.message(regex=r"^rewrite (?P<words>.+)")
async def rewrite(ctx: TurnContext) -> None:
    """Stream a draft, then replace it with a different final text."""
    assert ctx.match is not None
    async with await ctx.stream() as out:
        await out.write(f"draft {ctx.match['words']}")
        await asyncio.sleep(0.1)
        await out.set(f"final {ctx.match['words']}")


@app.message(regex=r"^twice\b")
async def twice(ctx: TurnContext) -> None:
    """Two replies in one turn."""
    await ctx.reply("one")
    await ctx.reply("two")


@app.message()
async def remember(ctx: TurnContext) -> None:
    """Say how many history entries the session held before this turn, and the text."""
    history = await ctx.session.history()
    users = [entry.content for entry in history if entry.role == "user"]
    await ctx.reply(f"history={len(history)} users={'|'.join(users)} you said: {ctx.text}")
