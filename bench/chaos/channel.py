"""The kill loop on a messaging channel whose platform is faked (Feishu, WeCom).

Like :func:`bench.chaos.telegram.run_telegram`: callbacks signed (and encrypted) as the
platform does are POSTed in order per chat to the real route ``/webhooks/<channel>/<bot>``,
2 ``botcore worker -c 2`` answer through the real adapter against a fake platform API
(:mod:`bench.chaos.fake_common`: 20-80 ms a call, every created message recorded per chat),
and the oldest ready worker's process group is SIGKILLed every ``--kill-every`` s.
Reconciled from what the fake created: lost, duplicated, reordered.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from rich.console import Console

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

__all__ = ["Callback", "ChannelBench", "run_channel"]

_STARTED = re.compile(r"turn started .*?event_id=(\S+)")


@dataclass(frozen=True)
class Callback:
    """One webhook request as the platform sends it."""

    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ChannelBench:
    """What differs between channels.

    Attributes:
        name: run name (``feishu``, ``wecom``).
        channel: botcore channel.
        bot: the ``[bots.chaos]`` table.
        callback: ``(conv, seq)`` -> the request (built at each attempt: fresh timestamp).
        stream: ``conv`` -> the Redis stream of the messages the fake created in its chat.
        event_id: ``(conv, seq)`` -> the inbound message's ``event_id`` (as the worker logs it).
        calls: the fake's call log; ``deduped``: its counter of calls answered by idempotency.
        send_calls: the logged call names that create a message.
        fake: the fake's uvicorn factory.
    """

    name: str
    channel: str
    bot: dict[str, Any]
    callback: Callable[[int, int], Callback]
    stream: Callable[[int], str]
    event_id: Callable[[int, int], str]
    calls: str
    deduped: str
    send_calls: frozenset[str]
    fake: str


def start_fake(services: Services, bench: ChannelBench) -> str:
    """Start the channel's fake platform (a uvicorn process); its base URL."""
    return start_fake_api(services, bench.fake, bench.name)


def _config(services: Services, bench: ChannelBench, api_base: str) -> dict[str, Any]:
    return chaos_settings(services, "chaos", {"channel": bench.channel,
                                              "app": "bench.bots:chaos",
                                              "api_base": api_base, **bench.bot})


async def _post_chat(client: httpx.AsyncClient, gate: asyncio.Semaphore, bench: ChannelBench,
                     conv: int, count: int) -> int:
    """POST one chat's callbacks in order; a failed POST is retried (as platforms do)."""
    errors = 0
    for seq in range(count):
        for _attempt in range(20):
            request = bench.callback(conv, seq)
            async with gate:
                try:
                    response = await client.post(f"/webhooks/{bench.channel}/chaos",
                                                 params=request.query, headers=request.headers,
                                                 content=request.body)
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            errors += 1
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"could not post chat {conv} #{seq}")
    return errors


async def post_callbacks(port: int, bench: ChannelBench, plan: list[int],
                         concurrency: int) -> int:
    """POST ``plan[c]`` callbacks to chat ``c``, chats in parallel; returns retried POSTs."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=10) as client:
        errors = await asyncio.gather(*(_post_chat(client, gate, bench, c, n)
                                        for c, n in enumerate(plan)))
    return sum(errors)


async def _in_flight_at_kills(redis: Redis, bench: ChannelBench,
                              kill_times: list[float]) -> int:
    """Message-creating calls (of any worker) the fake was serving at each kill, summed."""
    spans = []
    for raw in await redis.lrange(bench.calls, 0, -1):
        call, start, end = (raw.decode() if isinstance(raw, bytes) else raw).split()
        if call in bench.send_calls:
            spans.append((float(start), float(end)))
    return sum(1 for t in kill_times for start, end in spans if start <= t <= end)


async def _account(redis: Redis, bench: ChannelBench, outcome: Outcome, log: str,
                   kill_times: list[float]) -> None:
    """Re-runs (from the worker log), answers repeated more than cut, calls at kills."""
    outcome.in_flight_at_kills = await _in_flight_at_kills(redis, bench, kill_times)
    outcome.platform_deduped = int(await redis.get(bench.deduped) or 0)
    starts = Counter(_STARTED.findall(log))
    outcome.reexecuted = max(0, sum(starts.values()) - len(starts))
    outcome.over_one_per_cut = sum(
        1 for (chat, seq), dups in outcome.dup_by_answer.items()
        if dups > starts[bench.event_id(int(chat.removeprefix("chat")), seq)] - 1)


async def run_channel(services: Services, args: argparse.Namespace, console: Console,
                      bench: ChannelBench, plan: list[int]) -> Outcome:
    """The botcore pipeline on ``bench``'s channel under kills."""
    api_base = start_fake(services, bench)
    pipeline = await start_pipeline(services, bench.name, _config(services, bench, api_base))
    redis = pipeline.redis
    streams = {f"chat{c}": bench.stream(c) for c in range(len(plan))}
    console.print(f"{bench.name}: posting {sum(plan)} callbacks, kill every {args.kill_every} s")
    started = time.monotonic()
    outcome = Outcome(messages=sum(plan), send_call="/".join(sorted(bench.send_calls)))
    with Killer(services, pipeline.start_worker, pipeline.workers, args.kill_every,
                pipeline.ready) as killer:
        errors = await post_callbacks(pipeline.port, bench, plan, args.concurrency)
        console.print(f"{bench.name}: posted in {time.monotonic() - started:.1f} s ({errors} "
                      "retried posts); waiting for the answers")
        outcome.stopped_by = await wait_replies(redis, list(streams.values()), sum(plan),
                                                stall=args.stall, limit=args.deadline,
                                                distinct=True)
        outcome.elapsed = time.monotonic() - started
        outcome.kills, outcome.skipped_kills = killer.kills, killer.skipped
    await asyncio.sleep(args.settle)  # a late duplicate would land within a lease period
    await reconcile(redis, streams, plan, outcome)
    await _account(redis, bench, outcome, pipeline.log(), killer.kill_times)
    await pipeline.close()
    return outcome
