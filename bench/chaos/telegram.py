"""Kill chaos on the Telegram channel: the real adapter against a fake Bot API.

Updates are POSTed to the real webhook route (``/webhooks/telegram/<bot>`` with the
``X-Telegram-Bot-Api-Secret-Token`` header), the workers answer through
:class:`adapters.telegram.TelegramAdapter` (its shared rate limits, its delivery ledger),
and :mod:`bench.chaos.fake_bot_api` (a uvicorn process, 20-80 ms a call) records every
message the bot sent per chat. Unlike the web channel, whose reply is one atomic Redis
script, a SIGKILL inside ``sendMessage`` leaves a delivered message whose id the worker never
recorded: the re-run sends it again. This run measures how often.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter
from typing import Any

import httpx
from redis.asyncio import Redis
from rich.console import Console

from bench.chaos.bots import PARTS
from bench.chaos.fake_bot_api import BOT_USERNAME, CALLS, TOKEN, chat_stream
from bench.chaos.run import (
    Killer,
    Outcome,
    chaos_settings,
    reconcile,
    start_fake_api,
    start_pipeline,
    wait_replies,
)
from bench.common import Services

__all__ = ["FIRST_CHAT", "SECRET", "fake_api", "run_telegram"]

SECRET = "chaos-bench-secret_0"
FIRST_CHAT = 700_000_000
_HEADERS = {"x-telegram-bot-api-secret-token": SECRET}
_STARTED = re.compile(r"turn started .*?event_id=(\d+)")


def fake_api(services: Services) -> str:
    """Start the fake Bot API (a uvicorn process); its base URL."""
    return start_fake_api(services, "bench.chaos.fake_bot_api:create_app", "telegram")


def _config(services: Services, api_base: str, app: str) -> dict[str, Any]:
    return chaos_settings(services, "tg", {"channel": "telegram", "app": app, "token": TOKEN,
                                           "bot_username": BOT_USERNAME,
                                           "secret_token": SECRET, "api_base": api_base})


def update(conv: int, seq: int) -> dict[str, Any]:
    """A private-chat text message Update (https://core.telegram.org/bots/api#update):
    ``"<seq> <conv>"`` from user ``FIRST_CHAT + conv`` in their chat with the bot."""
    chat_id = FIRST_CHAT + conv
    user = {"id": chat_id, "is_bot": False, "first_name": f"User {conv}"}
    return {"update_id": conv * 1_000_000 + seq + 1,  # the answer's turn logs it as event_id
            "message": {"message_id": seq + 1, "from": user, "date": int(time.time()),
                        "chat": {"id": chat_id, "first_name": f"User {conv}",
                                 "type": "private"},
                        "text": f"{seq} {conv}"}}


async def _post_chat(client: httpx.AsyncClient, gate: asyncio.Semaphore, conv: int,
                     count: int) -> int:
    """POST one chat's updates in order; a failed POST is retried (as Telegram does)."""
    errors = 0
    for seq in range(count):
        body = update(conv, seq)
        for _attempt in range(20):
            async with gate:
                try:
                    response = await client.post("/webhooks/telegram/tg", json=body,
                                                 headers=_HEADERS)
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            errors += 1
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"could not post chat {conv} #{seq}")
    return errors


async def post_updates(port: int, plan: list[int], concurrency: int) -> int:
    """POST ``plan[c]`` updates to chat ``c``, chats in parallel; returns retried POSTs."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=10) as client:
        errors = await asyncio.gather(*(_post_chat(client, gate, c, n)
                                        for c, n in enumerate(plan)))
    return sum(errors)


async def _in_flight_at_kills(redis: Redis, kill_times: list[float]) -> int:
    """``sendMessage`` calls (of any worker) the fake was serving at each kill, summed."""
    spans = []
    for raw in await redis.lrange(CALLS, 0, -1):
        method, start, end = (raw.decode() if isinstance(raw, bytes) else raw).split()
        if method == "sendMessage":
            spans.append((float(start), float(end)))
    return sum(1 for t in kill_times for start, end in spans if start <= t <= end)


async def run_telegram(services: Services, args: argparse.Namespace, console: Console, *,
                       api_base: str, plan: list[int], long: bool) -> Outcome:
    """The botcore pipeline on the Telegram channel under kills (``long``: 3-part answers)."""
    name = "telegram-long" if long else "telegram"
    app = "bench.chaos.bots:long" if long else "bench.bots:chaos"
    pipeline = await start_pipeline(services, name, _config(services, api_base, app))
    redis = pipeline.redis
    parts = PARTS if long else 1
    streams = {f"chat{c}": chat_stream(FIRST_CHAT + c) for c in range(len(plan))}
    console.print(f"{name}: posting {sum(plan)} updates ({parts} message(s) per answer), "
                  f"kill every {args.kill_every} s")
    started = time.monotonic()
    outcome = Outcome(messages=sum(plan), parts=parts)
    with Killer(services, pipeline.start_worker, pipeline.workers, args.kill_every,
                pipeline.ready) as killer:
        errors = await post_updates(pipeline.port, plan, args.concurrency)
        console.print(f"{name}: posted in {time.monotonic() - started:.1f} s ({errors} retried "
                      "posts); waiting for the answers")
        outcome.stopped_by = await wait_replies(redis, list(streams.values()),
                                                sum(plan) * parts, stall=args.stall,
                                                limit=args.deadline, distinct=True)
        outcome.elapsed = time.monotonic() - started
        outcome.kills, outcome.skipped_kills = killer.kills, killer.skipped
    await asyncio.sleep(args.settle)  # a late duplicate would land within a lease period
    await reconcile(redis, streams, [n * parts for n in plan], outcome)
    outcome.in_flight_at_kills = await _in_flight_at_kills(redis, killer.kill_times)
    starts = Counter(_STARTED.findall(pipeline.log()))
    outcome.reexecuted = max(0, sum(starts.values()) - len(starts))
    outcome.over_one_per_cut = sum(
        1 for (chat, seq), dups in outcome.dup_by_answer.items()
        if dups > starts[str(int(chat.removeprefix("chat")) * 1_000_000 + seq + 1)] - 1)
    await pipeline.close()
    return outcome
