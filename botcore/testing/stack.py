"""BotStack: the real pipeline for integration tests.

The web app runs in-process (driven through httpx's ASGI transport, lifespan included),
the worker is a real ``botcore worker`` process, Redis is a real server. Replies of ``web``
bots land in the Redis stream the web chat reads, which :meth:`BotStack.replies` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from botcore.embedded import start_worker_process, stop_process
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey
from botcore.redis_client import connect
from botcore.settings import Settings, load_settings
from botcore.web.app import create_app

__all__ = ["BotStack", "toml_value", "wait_until"]


def toml_value(value: Any) -> str:
    """A TOML literal for a str, bool, number or list of those."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _toml(config: dict[str, Any], prefix: str = "") -> str:
    scalars = [f"{k} = {toml_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    tables = [_toml(v, f"{prefix}{k}.") for k, v in config.items() if isinstance(v, dict)]
    head = f"[{prefix.rstrip('.')}]\n" if prefix and scalars else ""
    return head + "\n".join(scalars) + "\n\n" + "\n".join(tables)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0,
                     interval: float = 0.05) -> None:
    """Poll ``check`` until it returns True; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class BotStack:
    """Settings file + worker process(es) + in-process web app, on a real Redis.

    Args:
        redis_url: the Redis to use (flushed by the caller).
        workdir: where the settings file is written.
        config: the settings as a dict (``{"bots": {...}, "ingress": {...}}``).
        env: extra environment for the worker (e.g. fake API hosts).
    """

    def __init__(self, redis_url: str, workdir: Path, config: dict[str, Any],
                 env: dict[str, str] | None = None) -> None:
        self.redis_url = redis_url
        self.config_path = workdir / "botcore.toml"
        self.config_path.write_text(_toml({"redis_url": redis_url, **config}), "utf-8")
        self.settings: Settings = load_settings(self.config_path)
        self.keys = KeyBuilder(prefix=self.settings.key_prefix)
        self.env = {"PYTHONPATH": os.pathsep.join([str(Path.cwd()),
                                                   os.environ.get("PYTHONPATH", "")]),
                    **(env or {})}
        self.workers: list[subprocess.Popen[bytes]] = []
        self.redis = connect(redis_url)

    def start_worker(self, concurrency: int = 1) -> subprocess.Popen[bytes]:
        """Start one more ``botcore worker`` process."""
        process = start_worker_process(self.redis_url, config=self.config_path,
                                       concurrency=concurrency, env=self.env)
        self.workers.append(process)
        return process

    def kill_worker(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL a worker's whole process group (main process and pool children)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        self.workers.remove(process)

    async def wait_for_worker(self, timeout: float = 30.0) -> None:
        """Wait for a worker heartbeat (the sweeper writes it once the pool is up)."""
        async def alive() -> bool:
            return bool([k async for k in self.redis.scan_iter(
                match=self.keys.worker_pattern())])
        await wait_until(alive, timeout)

    @contextlib.asynccontextmanager
    async def client(self) -> AsyncIterator[httpx.AsyncClient]:
        """An HTTP client on the web app, inside its lifespan."""
        app = create_app(self.settings, redis_url=self.redis_url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://botcore") as c:
                yield c

    async def replies(self, bot_id: str, conversation_id: str) -> list[dict[str, Any]]:
        """Final messages a ``web`` bot sent to a conversation, in order."""
        conv = ConversationKey(channel="web", bot_id=bot_id, chat_id=conversation_id)
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await self.redis.xrange(
            self.keys.web_outbox(conv.id))  # type: ignore[assignment]
        events = [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]
        return [event for event in events if event.get("type") == "message"]

    async def close(self) -> None:
        """Stop workers and close the client."""
        for process in list(self.workers):
            stop_process(process, timeout=10)
        self.workers.clear()
        await self.redis.aclose()
