"""A bot for the Feishu end-to-end tests: streams its answer in a few pieces."""

from __future__ import annotations

from botcore import BotApp, TurnContext

app = BotApp("feishu-e2e")


@app.message()
async def answer(ctx: TurnContext) -> None:
    """Stream ``you said: <text>`` word by word (a CardKit card on Feishu)."""
    async with await ctx.stream() as out:
        for word in f"you said: {ctx.text}".split(" "):
            await out.write(word + " ")
