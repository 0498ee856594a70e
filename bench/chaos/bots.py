"""The long-answer bot of the chaos benchmark (``bench.chaos.bots:long``).

Like ``bench.bots:chaos`` (10-20 ms of fake work; inbound texts are ``"<seq> <conv>"``), but
each answer is three paragraphs of ~3,000 characters, which the Telegram adapter sends as
three messages (its limit is 4,096). Paragraph ``k`` starts with ``3 * seq + k``, so the
reconciler treats every part as its own numbered reply: a part sent twice is a duplicate,
a part never sent is lost.
"""

from __future__ import annotations

import asyncio
import random

from botcore import BotApp, TurnContext

__all__ = ["PARTS", "long"]

#: Messages per answer.
PARTS = 3
_FILLER = " ".join(["lorem"] * 500)

long = BotApp("bench-chaos-long")


@long.message()
async def long_answer(ctx: TurnContext) -> None:
    """Fake work, then one answer the adapter splits into :data:`PARTS` messages."""
    await asyncio.sleep(random.uniform(0.010, 0.020))
    seq = int(ctx.text.split(" ", 1)[0])
    await ctx.reply("\n\n".join(f"{PARTS * seq + k} {_FILLER}" for k in range(PARTS)))
