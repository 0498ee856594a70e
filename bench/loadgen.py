"""A small HTTP/1.1 load generator, run in its own process: ``python -m bench.loadgen``.

Keep-alive connections on raw asyncio streams (uvloop), web-chat JSON bodies with a unique
``client_msg_id`` each. Two modes:

* closed loop (``--concurrency C``): C connections send back to back for ``--duration``;
* open loop (``--rate R``): one request every 1/R s on a pool of connections; latency is
  measured from the *intended* send time, so a stalled server cannot hide its queue
  (no coordinated omission).

Prints one JSON object: requests, errors, elapsed, rps, p50_ms, p90_ms, p99_ms, max_ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field

import uvloop

from bench.common import percentile

__all__ = ["main"]


@dataclass
class Tally:
    """What the run saw."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0


class Conn:
    """One keep-alive connection that sends a POST and reads its response."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.addr = (host, port)
        self.head = f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n" \
                    "Content-Type: application/json\r\nContent-Length: "
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> int:
        """Send ``body``; return the status code."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(*self.addr)
        assert self.reader is not None
        self.writer.write(f"{self.head}{len(body)}\r\n\r\n".encode() + body)
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = 0
        for line in header.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status


def make_body(run: str, n: int, conversations: int) -> bytes:
    """The n-th web-chat message of this run."""
    conv = n % conversations
    return (f'{{"conversation_id":"c{conv}","user_id":"u{conv}","text":"hello {n}",'
            f'"client_msg_id":"{run}-{n}"}}').encode()


async def _closed(conn: Conn, args: argparse.Namespace, tally: Tally, stop: float,
                  offset: int) -> None:
    n = offset
    while time.monotonic() < stop and tally.sent < args.max_requests:
        tally.sent += 1
        started = time.perf_counter()
        try:
            ok = await conn.post(make_body(args.run, n, args.conversations)) == 200
        except (OSError, asyncio.IncompleteReadError, ValueError):
            ok, conn.writer = False, None
        tally.latencies.append(time.perf_counter() - started)
        tally.errors += not ok
        n += args.concurrency


async def _one(pool: asyncio.Queue[Conn], body: bytes, due: float, tally: Tally) -> None:
    conn = await pool.get()
    try:
        ok = await conn.post(body) == 200
    except (OSError, asyncio.IncompleteReadError, ValueError):
        ok, conn.writer = False, None
    finally:
        pool.put_nowait(conn)
    tally.latencies.append(time.perf_counter() - due)
    tally.errors += not ok


async def _open(args: argparse.Namespace, tally: Tally) -> None:
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(args.concurrency):
        pool.put_nowait(Conn(args.host, args.port, args.path))
    start = time.perf_counter()
    total = min(args.max_requests, int(args.rate * args.duration))
    tasks = set()
    for n in range(total):
        due = start + n / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_one(pool, make_body(args.run, n, args.conversations),
                                        due, tally))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        tally.sent += 1
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def run(args: argparse.Namespace) -> dict[str, float]:
    """Run the configured load and return the figures."""
    tally = Tally()
    started = time.perf_counter()
    if args.rate:
        await _open(args, tally)
    else:
        stop = time.monotonic() + args.duration
        conns = [Conn(args.host, args.port, args.path) for _ in range(args.concurrency)]
        await asyncio.gather(*(_closed(c, args, tally, stop, i) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - started
    ms = [x * 1000 for x in tally.latencies]
    return {"requests": len(ms), "errors": tally.errors, "elapsed": round(elapsed, 2),
            "rps": round(len(ms) / elapsed, 1), "p50_ms": round(percentile(ms, 0.5), 2),
            "p90_ms": round(percentile(ms, 0.9), 2), "p99_ms": round(percentile(ms, 0.99), 2),
            "max_ms": round(max(ms, default=0.0), 2)}


def main() -> None:
    """Parse arguments, run, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/webhooks/web/bench")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0.0, help="open loop, requests/s")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--run", default="r")
    args = parser.parse_args()
    if args.host != "127.0.0.1":
        parser.error("the benchmarks only target 127.0.0.1")
    print(json.dumps(uvloop.run(run(args))))


if __name__ == "__main__":
    main()
