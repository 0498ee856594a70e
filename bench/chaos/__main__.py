"""``python -m bench.chaos``: kill workers while messages flow; count lost/dup/reordered.

``--channel telegram``: the same kill loop on the Telegram channel (real adapter, fake Bot
API with 20-80 ms calls, updates through the real webhook route), once with one-message
answers and once with answers split in 3 messages, plus the web channel as the baseline.
``--channel feishu`` / ``--channel wecom``: the same on Feishu (encrypted, signed events; a
fake Open API honouring ``uuid``) and on a WeCom self-built app (encrypted XML callbacks; a
fake ``message/send`` without dedupe), with the web channel as the baseline.

Durable run: N messages over C web-chat conversations POSTed to the real webhook route
(uvicorn, loopback), 2 ``botcore worker -c 2`` processes, one worker's whole process group
SIGKILLed every ``--kill-every`` s and restarted. Baseline in the same run: one Celery task
per message (acks_late + reject_on_worker_lost), same workers, same kills, tasks published
directly (a naive webhook would only publish). Both are reconciled from the reply streams.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from bench.chaos import feishu, wecom
from bench.chaos.channel import run_channel
from bench.chaos.naive import TASK
from bench.chaos.naive import app as naive_app
from bench.chaos.run import LEASE_TTL, SWEEP_INTERVAL, Killer, Outcome, reconcile, wait_replies
from bench.chaos.telegram import fake_api, run_telegram
from bench.common import Services, machine_info, post_all, write_settings
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey
from botcore.testing.stack import wait_until


def _plan(messages: int, conversations: int) -> list[int]:
    """How many messages each conversation gets (round robin)."""
    return [messages // conversations + (c < messages % conversations)
            for c in range(conversations)]


def _outboxes(keys: KeyBuilder, bot_id: str, conversations: int) -> dict[str, str]:
    return {f"c{c}": keys.web_outbox(ConversationKey(channel="web", bot_id=bot_id,
                                                     chat_id=f"c{c}").id)
            for c in range(conversations)}


def _durable_config(services: Services) -> dict[str, Any]:
    return {
        "redis_url": services.redis_url,
        "ingress": {"lease_ttl": LEASE_TTL, "schedule_ttl": 10.0,
                    "sweep_interval": SWEEP_INTERVAL},
        # The visibility timeout is task_time_limit + 60 s; the soft limit is limit - 15 s.
        "worker": {"task_time_limit": 30},
        "bots": {"chaos": {"channel": "web", "app": "bench.bots:chaos",
                           "history_limit": 100_000, "messages_per_minute": 0}},
    }


async def _finish(redis: Redis, killer: Killer, outboxes: dict[str, str], plan: list[int],
                  args: argparse.Namespace, started: float) -> Outcome:
    """Wait for the replies (kills go on meanwhile), stop killing, settle, reconcile."""
    outcome = Outcome(messages=sum(plan))
    outcome.stopped_by = await wait_replies(redis, list(outboxes.values()), sum(plan),
                                            stall=args.stall, limit=args.deadline)
    outcome.elapsed = time.monotonic() - started
    outcome.kills, outcome.skipped_kills = killer.kills, killer.skipped
    killer.__exit__()
    await asyncio.sleep(args.settle)  # a late duplicate would land within a lease period
    return await reconcile(redis, outboxes, plan, outcome)


async def run_durable(services: Services, args: argparse.Namespace,
                      console: Console) -> Outcome:
    """The botcore pipeline under kills."""
    config = write_settings(services.workdir / "botcore.toml", _durable_config(services))
    env = {"BENCH_CONFIG": str(config), "BENCH_REDIS_URL": services.redis_url}
    port = services.start_uvicorn("bench.servers:botcore_app", env, "web.log")
    keys = KeyBuilder(prefix="botcore")
    redis = Redis.from_url(services.redis_url)
    workers = [services.start_worker(config, 2) for _ in range(2)]

    async def ready(worker: subprocess.Popen[bytes]) -> bool:
        """The worker's sweeper wrote its heartbeat: its pool is up."""
        return bool(await redis.exists(keys.worker_heartbeat(f"{socket.gethostname()}-"
                                                             f"{worker.pid}")))

    async def any_ready() -> bool:
        return any([await ready(w) for w in workers])
    await wait_until(any_ready, 60)
    plan = _plan(args.messages, args.conversations)
    outboxes = _outboxes(keys, "chaos", args.conversations)
    console.print(f"durable: posting {sum(plan)} messages, kill every {args.kill_every} s")
    started = time.monotonic()
    with Killer(services, lambda: services.start_worker(config, 2), workers,
                args.kill_every, ready) as killer:
        errors = await post_all(port, "chaos", plan, args.concurrency)
        console.print(f"durable: posted in {time.monotonic() - started:.1f} s "
                      f"({errors} retried posts); waiting for replies")
        outcome = await _finish(redis, killer, outboxes, plan, args, started)
    log = (services.workdir / "worker.log").read_text(errors="replace")
    outcome.reexecuted = max(0, log.count("turn started") - (outcome.replies
                                                            - outcome.duplicated))
    await redis.flushall()
    await redis.aclose()
    for worker in workers:
        services.stop(worker)
    return outcome


def _start_naive(services: Services) -> Callable[[], Any]:
    def start() -> Any:
        return services.spawn([sys.executable, "-m", "celery", "-A", "bench.chaos.naive",
                               "worker", "-Q", "naive", "-c", "2", "--without-gossip",
                               "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
                              "naive.log", {"BENCH_REDIS_URL": services.redis_url})
    return start


async def run_naive(services: Services, args: argparse.Namespace,
                    console: Console) -> Outcome:
    """One Celery task per message under the same kills."""
    naive_app.conf.broker_url = services.redis_url
    keys = KeyBuilder(prefix="botcore")
    redis = Redis.from_url(services.redis_url)
    start = _start_naive(services)
    workers = [start() for _ in range(2)]
    plan = _plan(args.baseline_messages, args.conversations)
    outboxes = _outboxes(keys, "naive", args.conversations)
    console.print(f"baseline: publishing {sum(plan)} tasks, kill every {args.kill_every} s")
    started = time.monotonic()
    async def ready(worker: subprocess.Popen[bytes]) -> bool:
        return True  # a bare Celery worker starts in about a second

    with Killer(services, start, workers, args.kill_every, ready) as killer:
        for seq in range(max(plan)):  # interleaved across conversations, in order within
            for conv, key in enumerate(outboxes.values()):
                if seq < plan[conv]:
                    naive_app.send_task(TASK, args=[key, seq, "bench:naive:exec"],
                                        queue="naive")
        outcome = await _finish(redis, killer, outboxes, plan, args, started)
    runs = [int(v) for v in (await redis.hgetall("bench:naive:exec")).values()]
    outcome.reexecuted = sum(n - 1 for n in runs if n > 1)
    await redis.flushall()
    await redis.aclose()
    for worker in workers:
        services.stop(worker)
    return outcome


def _messaging(name: str) -> bool:
    """A run on a messaging app (a fake platform API), not on the web channel."""
    return name.startswith(("telegram", "feishu", "wecom"))


def _table(results: dict[str, Outcome]) -> Table:
    table = Table(title="kill chaos: a worker's process group SIGKILLed periodically "
                  "(lost/dup/reordered count messages, or parts of split answers)")
    for col in ("run", "msgs", "parts", "kills", "skipped", "lost", "dup", "dup/kill",
                "max dup/answer", "dup>re-runs", "sends@kills", "uuid hits", "reordered",
                "re-exec", "time s", "msg/s", "stopped by"):
        table.add_column(col, justify="right")
    for name, o in results.items():
        app = _messaging(name)
        table.add_row(name, str(o.messages), str(o.parts), str(o.kills), str(o.skipped_kills),
                      str(o.lost), str(o.duplicated), f"{o.dup_per_kill:.2f}",
                      str(o.dup_max_answer), str(o.over_one_per_cut) if app else "-",
                      str(o.in_flight_at_kills) if app else "-",
                      str(o.platform_deduped) if name == "feishu" else "-",
                      str(o.reordered), str(o.reexecuted), f"{o.elapsed:.1f}",
                      f"{o.throughput:.0f}", o.stopped_by)
    return table


def _args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channel", choices=("web", "telegram", "feishu", "wecom"),
                        default="web",
                        help="telegram: Telegram runs (1 and 3 messages per answer) + web; "
                        "feishu, wecom: that channel + web")
    parser.add_argument("--messages", type=int, default=None,
                        help="web run (default 10,000; 2,000 with --channel telegram)")
    parser.add_argument("--tg-messages", type=int, default=1_200)
    parser.add_argument("--tg-long-messages", type=int, default=300,
                        help="answers split in 3 messages; 0: skip that run")
    parser.add_argument("--app-messages", type=int, default=6_000,
                        help="messages of the feishu / wecom run")
    parser.add_argument("--app-conversations", type=int, default=300,
                        help="chats of the feishu / wecom run (WeCom drops over 30 messages "
                        "a minute to one member: keep messages / chats under 30)")
    parser.add_argument("--baseline-messages", type=int, default=2_000)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--kill-every", type=float, default=2.0, help="seconds; 0: no kills")
    parser.add_argument("--concurrency", type=int, default=32, help="POSTs in flight")
    parser.add_argument("--deadline", type=float, default=300.0, help="max wait, seconds")
    parser.add_argument("--stall", type=float, default=20.0,
                        help="stop waiting after this long without a new reply")
    parser.add_argument("--settle", type=float, default=LEASE_TTL + 2 * SWEEP_INTERVAL)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--quick", action="store_true", help="1,000 / 300 messages")
    args = parser.parse_args(argv)
    if args.messages is None:
        args.messages = 10_000 if args.channel == "web" else 2_000
    if args.quick:
        args.messages, args.baseline_messages, args.stall = 1_000, 300, 12.0
        args.tg_messages, args.tg_long_messages, args.app_messages = 300, 100, 600
    return args


async def _main(args: argparse.Namespace, console: Console) -> dict[str, Outcome]:
    results: dict[str, Outcome] = {}
    with Services("chaos") as services:
        if args.channel == "telegram":
            return await _telegram(services, args, console)
        if args.channel in ("feishu", "wecom"):
            if not args.no_baseline:
                results["web"] = await run_durable(services, args, console)
            bench = feishu.BENCH if args.channel == "feishu" else wecom.BENCH
            results[args.channel] = await run_channel(
                services, args, console, bench, _plan(args.app_messages, args.app_conversations))
            return results
        if not args.no_baseline:
            results["naive"] = await run_naive(services, args, console)
        results["botcore"] = await run_durable(services, args, console)
    return results


async def _telegram(services: Services, args: argparse.Namespace,
                    console: Console) -> dict[str, Outcome]:
    """The web channel (baseline), then Telegram with 1-message and 3-message answers."""
    results: dict[str, Outcome] = {}
    if not args.no_baseline:
        results["web"] = await run_durable(services, args, console)
    api_base = fake_api(services)
    results["telegram"] = await run_telegram(
        services, args, console, api_base=api_base,
        plan=_plan(args.tg_messages, args.conversations), long=False)
    if args.tg_long_messages:
        results["telegram-3part"] = await run_telegram(
            services, args, console, api_base=api_base,
            plan=_plan(args.tg_long_messages, args.conversations), long=True)
    return results


def main(argv: list[str] | None = None) -> dict[str, Outcome]:
    """Run the baseline, then the durable pipeline(s), print and return the outcomes."""
    args = _args(argv)
    console = Console(width=max(Console().width, 180))
    console.print(machine_info())
    results = asyncio.run(_main(args, console))
    console.print(_table(results))
    for name, outcome in results.items():
        if outcome.dup_same_id:
            console.print(f"{name}: {outcome.dup_same_id} of {outcome.duplicated} duplicates "
                          "repeat the same reply id (a re-send after a kill inside the send)")
        if outcome.lost_examples:
            console.print(f"{name}: lost e.g. {', '.join(outcome.lost_examples[:5])}")
    for name, o in results.items():
        if _messaging(name):
            what = "parts" if o.parts > 1 else "answers"
            deduped = (f"; {o.platform_deduped} calls answered with an earlier message by uuid"
                       if name == "feishu" else "")
            console.print(f"{name}: {o.duplicated} duplicated {what} in {o.kills} kills "
                          f"({o.in_flight_at_kills} {o.send_call} calls in flight at the kills, "
                          f"both workers); at most {o.dup_max_answer} duplicated in one answer; "
                          f"{o.over_one_per_cut} answers with more duplicated {what} than "
                          f"re-runs of their turn{deduped}")
    if "botcore" in results:
        durable = results["botcore"]
        goal = durable.lost == durable.duplicated == durable.reordered == 0
        console.print(f"goal 0 lost / 0 dup / 0 reordered: {'met' if goal else 'MISSED'}")
    return results


if __name__ == "__main__":
    main()
