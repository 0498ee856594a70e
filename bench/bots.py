"""The bots the benchmarks run (module paths ``bench.bots:chaos`` and ``bench.bots:chat``).

Inbound texts are ``"<conversation seq> <global seq>"``; the chaos bot answers with the
conversation sequence number, so the reconciler can tell lost, duplicated and reordered
replies apart from the reply streams alone.
"""

from __future__ import annotations

import asyncio
import itertools
import random

from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage

from botcore import BotApp, TurnContext

__all__ = ["chaos", "chat", "chat_async"]

chaos = BotApp("bench-chaos")


@chaos.message()
async def fake_work(ctx: TurnContext) -> None:
    """Pretend to call a model for 10-20 ms, then answer with the sequence number."""
    await asyncio.sleep(random.uniform(0.010, 0.020))
    await ctx.reply(ctx.text.split(" ", 1)[0])


# A scripted model: the same one-chunk answer forever (the iterator is consumed lazily).
chat = BotApp("bench-chat", chat_model=GenericFakeChatModel(
    messages=itertools.repeat(AIMessage("ok"))))


@chat.message()
async def answer(ctx: TurnContext) -> None:
    """History + message → the chat flow → the scripted model → streamed reply."""
    await ctx.flow("chat")


# The same, with a fake model that streams natively async (as ChatOpenAI does): the
# GenericFakeChatModel above only has a sync ``_stream``, so LangChain runs each chunk in a
# thread-pool executor, a cost a real async client does not have. FakeListChatModel streams
# one character per chunk: a one-character answer keeps the turn to one chunk, as above.
chat_async = BotApp("bench-chat-async", chat_model=FakeListChatModel(responses=["k"]))
chat_async.message()(answer)
