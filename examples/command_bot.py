"""A command bot: commands with arguments, keyword and regex handlers, an event handler."""

from __future__ import annotations

import random

from botcore import BotApp, TurnContext, keyword

app = BotApp("commands")


@app.command("echo")
async def echo(ctx: TurnContext) -> None:
    """``/echo text``: say it back."""
    assert ctx.command is not None
    await ctx.reply(ctx.command.raw_args or "(nothing to echo)")


@app.command("roll")
async def roll(ctx: TurnContext) -> None:
    """``/roll 20``: a die with N sides (default 6)."""
    assert ctx.command is not None
    sides = int(ctx.command.args[0]) if ctx.command.args and ctx.command.args[0].isdigit() else 6
    await ctx.reply(f"🎲 {random.randint(1, max(sides, 1))} (1–{sides})")


@app.message(regex=r"(?P<a>\d+)\s*\+\s*(?P<b>\d+)")
async def add(ctx: TurnContext) -> None:
    """``2 + 3`` → 5."""
    assert ctx.match is not None
    await ctx.reply(str(int(ctx.match["a"]) + int(ctx.match["b"])))


@app.message(keyword("hello", "你好") | keyword("hi"))
async def hello(ctx: TurnContext) -> None:
    """Greetings."""
    await ctx.reply(f"你好，{ctx.message.sender.name or ctx.message.sender.id}！")


@app.event("member_joined")
async def welcome(ctx: TurnContext) -> None:
    """Welcome new members."""
    await ctx.reply("欢迎加入！输入 /echo 或 /roll 试试。")


@app.message()
async def fallback(ctx: TurnContext) -> None:
    """Everything else."""
    await ctx.reply("Try /echo <text>, /roll <sides>, or '2 + 3'.")
