"""``python -m bench.e2e``: messages per second end to end, with 1 and 2 worker processes.

Web-chat messages are POSTed by ``bench.loadgen`` (its own process) to the real webhook
route (uvicorn, loopback); ``botcore
worker -c 1`` processes drain them through ``ctx.flow("chat")`` with a scripted LangChain
model (``bench.bots:chat``), and each answer is recorded in the conversation's reply stream.
Throughput = messages / (first POST → last reply recorded). The baseline is the same run
with one worker process; the ratio shows how the pipeline scales with processes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import Any

from redis.asyncio import Redis
from rich.console import Console
from rich.table import Table

from bench.common import ROOT, Services, machine_info, post_all, write_settings
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey
from botcore.testing.stack import wait_until

BOT = "chat"
MODELS = {"generic": "bench.bots:chat", "async": "bench.bots:chat_async"}


async def _replies(redis: Redis, keys: list[str]) -> int:
    """Final ``message`` events (deltas of a stream are not counted)."""
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.xrange(key)
    return sum(1 for entries in await pipe.execute() for _, fields in entries
               if fields.get(b"type") == b"message")


async def _wait_all(redis: Redis, keys: list[str], expected: int, limit: float) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.xlen(key)
        if sum(await pipe.execute()) >= expected and await _replies(redis, keys) >= expected:
            return True
        await asyncio.sleep(0.05)
    return False


async def _start_workers(services: Services, config: Any, count: int, redis: Redis,
                         keys: KeyBuilder) -> list[Any]:
    workers = [services.start_worker(config, 1, f"worker{count}.log") for _ in range(count)]
    host = socket.gethostname()

    async def all_ready() -> bool:
        found = [await redis.exists(keys.worker_heartbeat(f"{host}-{w.pid}")) for w in workers]
        return all(found)
    await wait_until(all_ready, 60)
    return workers


async def _post(port: int, args: argparse.Namespace) -> dict[str, Any]:
    """``args.messages`` POSTs from bench.loadgen (a separate process, keep-alive, uvloop)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", "--port", str(port), "--path",
        f"/webhooks/web/{BOT}", "--concurrency", str(args.concurrency), "--duration",
        str(args.deadline), "--max-requests", str(args.messages), "--conversations",
        str(args.conversations), "--run", f"e{time.time_ns()}",
        stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
    out, _ = await asyncio.wait_for(proc.communicate(), args.deadline + 30)
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def measure(services: Services, port: int, config: Any, count: int,
                  args: argparse.Namespace) -> dict[str, Any]:
    """One run with ``count`` worker processes."""
    keys = KeyBuilder(prefix="botcore")
    redis = Redis.from_url(services.redis_url)
    workers = await _start_workers(services, config, count, redis, keys)
    await post_all(port, BOT, [1] * args.conversations, args.concurrency)  # warm-up turn
    outboxes = [keys.web_outbox(ConversationKey(channel="web", bot_id=BOT,
                                                chat_id=f"c{c}").id)
                for c in range(args.conversations)]
    if not await _wait_all(redis, outboxes, args.conversations, 60):
        raise RuntimeError("warm-up turns were not answered within 60 s")
    await redis.delete(*outboxes)
    started = time.monotonic()
    load = await _post(port, args)
    posted = time.monotonic() - started
    done = await _wait_all(redis, outboxes, args.messages, args.deadline)
    elapsed = time.monotonic() - started
    answered = await _replies(redis, outboxes)
    for worker in workers:
        services.stop(worker)
    await redis.flushall()
    await redis.aclose()
    return {"workers": count, "messages": args.messages, "answered": answered, "done": done,
            "post_errors": load["errors"],
            "post_s": posted, "elapsed": elapsed, "rate": answered / elapsed}


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="end to end: webhook → worker (chat flow, scripted model) → reply")
    for col in ("worker processes", "messages", "answered", "POST errors", "POSTs done s",
                "all answered s", "msg/s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["workers"]), str(r["messages"]), str(r["answered"]),
                      str(r["post_errors"]),
                      f"{r['post_s']:.1f}", f"{r['elapsed']:.1f}", f"{r['rate']:.0f}")
    return table


async def _main(args: argparse.Namespace, console: Console) -> list[dict[str, Any]]:
    rows = []
    with Services("e2e") as services:
        config = write_settings(services.workdir / "botcore.toml", {
            "redis_url": services.redis_url, "log_level": args.log_level,
            "ingress": {"sweep_interval": 0.5},
            "bots": {BOT: {"channel": "web", "app": MODELS[args.model],
                           "history_limit": 100_000, "messages_per_minute": 0}}})
        env = {"BENCH_CONFIG": str(config), "BENCH_REDIS_URL": services.redis_url}
        port = services.start_uvicorn("bench.servers:botcore_app", env, "web.log")
        for count in args.workers:
            console.print(f"{count} worker process(es): {args.messages} messages")
            rows.append(await measure(services, port, config, count, args))
    return rows


def main() -> None:
    """Measure with each worker count and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=64, help="POSTs in flight")
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--log-level", default="INFO", help="of the web and worker processes")
    parser.add_argument("--model", choices=sorted(MODELS), default="generic",
                        help="generic: GenericFakeChatModel (sync stream, run in a thread); "
                             "async: FakeListChatModel (native async stream)")
    parser.add_argument("--quick", action="store_true", help="1,000 messages")
    args = parser.parse_args()
    if args.quick:
        args.messages = 1000
    console = Console(width=max(Console().width, 110))
    console.print(machine_info())
    rows = asyncio.run(_main(args, console))
    console.print(_table(rows))
    best = max(r["rate"] for r in rows)
    if len(rows) >= 2:
        console.print(f"ratio {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
                      f"{rows[-1]['rate'] / rows[0]['rate']:.2f}")
    console.print(f"best {best:.0f} msg/s (goal >= 500: {'met' if best >= 500 else 'MISSED'})")


if __name__ == "__main__":
    main()
