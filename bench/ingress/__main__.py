"""``python -m bench.ingress``: botcore's webhook route against a bare FastAPI endpoint.

Both are served by uvicorn (uvloop + httptools, one process each) on a private
redis-server, one after the other, under the same load: wrk (``-t1``, fixed connections) if
it is installed, else ``bench.loadgen``; then an open-loop run at a fixed rate.

botcore side: the ``web`` channel bot, the real route (verify → parse → Lua admit →
schedule), the Celery enqueuer publishing drain tasks to the Redis broker. No worker runs:
the benchmark measures acknowledgement, and a drain task is published once per conversation
per ``schedule_ttl`` (use ``--conversations 1000000`` to publish one per request).
"""

from __future__ import annotations

import argparse
from typing import Any

from redis import Redis
from rich.console import Console
from rich.table import Table

from bench.common import Services, machine_info, write_settings
from bench.ingress.load import closed_loop, fixed_rate

SERVERS = {"bare": "bench.servers:bare_app", "botcore": "bench.servers:botcore_app"}


def _measure(services: Services, name: str, args: argparse.Namespace, round_no: int,
             console: Console) -> dict[str, Any]:
    env = {"BENCH_CONFIG": str(services.workdir / "botcore.toml"),
           "BENCH_REDIS_URL": services.redis_url}
    port = services.start_uvicorn(SERVERS[name], env, f"{name}.log")
    server = services.processes[-1]
    try:
        tag = f"{name}{round_no}"
        closed_loop(port, f"{tag}w", 2, args.concurrency, args.conversations,
                    services.workdir, not args.no_wrk)  # warm-up
        console.print(f"  {name}: closed loop {args.seconds:.0f} s")
        load = closed_loop(port, f"{tag}c", args.seconds, args.concurrency,
                           args.conversations, services.workdir, not args.no_wrk)
        console.print(f"  {name}: {args.rate:.0f} req/s for {args.seconds:.0f} s")
        rate = fixed_rate(port, f"{tag}r", args.seconds, args.rate, args.conversations)
    finally:
        services.stop(server)
        Redis.from_url(services.redis_url).flushall()
    return {"load": load, "rate": rate}


def _table(results: dict[str, list[dict[str, Any]]], rate: float) -> Table:
    tool = results["bare"][0]["load"]["tool"]
    table = Table(title=f"webhook ingress, one uvicorn process each ({tool}; ms)")
    for col in ("server", "round", "req/s", "p50", "p99", "err", f"p99@{rate:.0f}/s",
                f"max@{rate:.0f}/s", "err@rate"):
        table.add_column(col, justify="right")
    for name, rounds in results.items():
        for i, r in enumerate(rounds, 1):
            load, fixed = r["load"], r["rate"]
            table.add_row(name, str(i), f"{load['rps']:.0f}", f"{load['p50_ms']:.1f}",
                          f"{load['p99_ms']:.1f}", str(load["errors"]),
                          f"{fixed['p99_ms']:.1f}", f"{fixed['max_ms']:.1f}",
                          str(fixed["errors"]))
    return table


def _mean(rounds: list[dict[str, Any]], part: str, key: str) -> float:
    return sum(float(r[part][key]) for r in rounds) / len(rounds)


def _summary(results: dict[str, list[dict[str, Any]]], rate: float) -> list[str]:
    bare, ours = results["bare"], results["botcore"]
    ratio = _mean(ours, "load", "rps") / _mean(bare, "load", "rps")
    p99s = sorted(float(r["rate"]["p99_ms"]) for r in ours)
    p99_rate = p99s[len(p99s) // 2]
    return [
        f"botcore / bare throughput: {ratio:.2f}  (goal >= 0.80: "
        f"{'met' if ratio >= 0.8 else 'MISSED'})",
        f"botcore p50 {_mean(ours, 'load', 'p50_ms'):.2f} ms vs bare "
        f"{_mean(bare, 'load', 'p50_ms'):.2f} ms; p99 {_mean(ours, 'load', 'p99_ms'):.2f} ms "
        f"vs {_mean(bare, 'load', 'p99_ms'):.2f} ms",
        f"botcore p99 at {rate:.0f} req/s, median of rounds: {p99_rate:.2f} ms (worst "
        f"{p99s[-1]:.2f} ms)  (goal < 50 ms: {'met' if p99_rate < 50 else 'MISSED'})",
    ]


def main() -> None:
    """Run both servers ``--rounds`` times, alternating, and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measured run")
    parser.add_argument("--concurrency", type=int, default=64, help="connections")
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-wrk", action="store_true", help="use bench.loadgen only")
    parser.add_argument("--quick", action="store_true", help="one round of 5 s")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 5.0, 1
    console = Console()
    console.print(machine_info())
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "botcore": []}
    with Services("ingress") as services:
        write_settings(services.workdir / "botcore.toml", {
            "redis_url": services.redis_url,
            # The per-conversation limit is on (its Redis call is part of the cost) but high
            # enough never to answer 429 here.
            "bots": {"bench": {"channel": "web", "app": "bench.bots:chaos",
                               "messages_per_minute": 10_000}}})
        for round_no in range(1, args.rounds + 1):
            for name in results:
                console.print(f"round {round_no}: {name}")
                results[name].append(_measure(services, name, args, round_no, console))
    console.print(_table(results, args.rate))
    for line in _summary(results, args.rate):
        console.print(line)


if __name__ == "__main__":
    main()
