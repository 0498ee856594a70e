"""Shared pieces of the durable-ingress benchmarks: processes, settings, figures.

Everything binds to 127.0.0.1, every wait has a deadline, and :class:`Services` stops what
it started (worker process groups, uvicorn servers, redis-server) when its ``with`` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from botcore.redis_server import RedisProcess, find_redis_server, free_port
from botcore.testing.stack import toml_value

__all__ = ["ROOT", "Services", "machine_info", "percentile", "post_all", "wait_port",
           "write_settings"]

ROOT = Path(__file__).resolve().parent.parent


def _toml(config: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    tables = [_toml(v, f"{prefix}{k}.") for k, v in config.items() if isinstance(v, dict)]
    head = f"[{prefix.rstrip('.')}]\n" if prefix and scalars else ""
    return head + "\n".join(scalars) + "\n\n" + "\n".join(tables)


def write_settings(path: Path, config: dict[str, Any]) -> Path:
    """Write a botcore.toml for ``config`` (a nested dict) and return its path."""
    path.write_text(_toml(config), "utf-8")
    return path


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) of ``values`` by nearest rank; 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def wait_port(port: int, timeout: float = 30.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def machine_info() -> dict[str, str]:
    """nproc, memory, Python and redis-server versions: printed with every result."""
    server = subprocess.run([find_redis_server(), "--version"], capture_output=True,
                            text=True, timeout=10, check=False).stdout.split()
    version = next((p.split("=", 1)[1] for p in server if p.startswith("v=")), "?")
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0")
    return {"nproc": str(os.cpu_count()), "memory": f"{int(mem) / 2**20:.1f} GiB",
            "python": platform.python_version(), "redis-server": version,
            "command": " ".join(["python -m", *sys.argv]).replace(
                sys.argv[0], _module_name(sys.argv[0]))}


def _module_name(path: str) -> str:
    with contextlib.suppress(ValueError):
        rel = Path(path).resolve().relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__main__" else rel.parts
        return ".".join(parts)
    return path


class Services:
    """A private redis-server plus the processes a benchmark starts; all stopped on exit."""

    def __init__(self, name: str) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix=f"botcore-bench-{name}-"))
        self.redis = RedisProcess(self.workdir / "redis", appendonly=False)
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")])}

    def __enter__(self) -> Services:
        self.redis.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for process in list(self.processes):
            self.stop(process)
        self.redis.stop()

    @property
    def redis_url(self) -> str:
        """URL of the private redis-server."""
        return self.redis.url

    def spawn(self, args: list[str], log_name: str, env: dict[str, str] | None = None
              ) -> subprocess.Popen[bytes]:
        """Start ``args`` in its own process group, output to a log file in the workdir."""
        log = (self.workdir / log_name).open("ab")
        process = subprocess.Popen(args, env={**self.env, **(env or {})}, cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        log.close()
        self.processes.append(process)
        return process

    def start_worker(self, config: Path, concurrency: int, log_name: str = "worker.log"
                     ) -> subprocess.Popen[bytes]:
        """``python -m botcore worker`` (as botcore.embedded.start_worker_process does)."""
        env = {"BOTCORE_REDIS_URL": self.redis_url, "BOTCORE_CONFIG": str(config)}
        return self.spawn([sys.executable, "-m", "botcore", "worker", "--concurrency",
                           str(concurrency)], log_name, env)

    def start_uvicorn(self, factory: str, env: dict[str, str], log_name: str) -> int:
        """Serve ``module:factory`` with uvicorn (uvloop + httptools, one process)."""
        port = free_port()
        self.spawn([sys.executable, "-m", "uvicorn", "--factory", factory, "--host",
                    "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http",
                    "httptools", "--no-access-log", "--log-level", "warning"], log_name, env)
        wait_port(port)
        return port

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process's whole group (main process and pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        self.processes.remove(process)

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """SIGTERM the group, SIGKILL after ``timeout``."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(process)
                return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # stray pool children
        if process in self.processes:
            self.processes.remove(process)

    def pick(self, processes: list[subprocess.Popen[bytes]], rng: random.Random
             ) -> subprocess.Popen[bytes]:
        """A random live process of ``processes``."""
        return rng.choice([p for p in processes if p.poll() is None] or processes)


async def post_conversation(client: httpx.AsyncClient, gate: asyncio.Semaphore, bot_id: str,
                            conv: int, count: int, run: str) -> int:
    """POST one conversation's messages in order; retry a message (same id) on failure."""
    errors = 0
    for seq in range(count):
        body = {"conversation_id": f"c{conv}", "user_id": f"u{conv}",
                "text": f"{seq} {conv}", "client_msg_id": f"{run}-{conv}-{seq}"}
        for _attempt in range(20):
            async with gate:
                try:
                    response = await client.post(f"/webhooks/web/{bot_id}", json=body)
                    if response.status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            errors += 1
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"could not post c{conv}#{seq}")
    return errors


async def post_all(port: int, bot_id: str, plan: list[int], concurrency: int) -> int:
    """POST ``plan[c]`` messages to conversation ``c`` of web bot ``bot_id``; retried POSTs."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=10) as client:
        errors = await asyncio.gather(*(
            post_conversation(client, gate, bot_id, c, n, f"r{time.time_ns()}")
            for c, n in enumerate(plan)))
    return sum(errors)
