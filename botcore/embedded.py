"""The embedded mode: one command runs Redis, a Celery worker and the web server.

With no ``redis_url`` configured, ``botcore serve`` starts a private ``redis-server`` under
the data directory and a ``botcore worker`` child process, then serves the web app. Ctrl-C or
SIGTERM stops all three. The code path is the production one; only the addresses differ.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from botcore.redis_server import RedisProcess
from botcore.settings import Settings

__all__ = ["embedded_services", "start_worker_process"]

log = structlog.get_logger("botcore.embedded")


def start_worker_process(redis_url: str, *, config: Path | None = None,
                         concurrency: int | None = None,
                         env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``botcore worker`` as a child process pointed at ``redis_url``."""
    child_env = {**os.environ, **(env or {}), "BOTCORE_REDIS_URL": redis_url}
    if config is not None:
        child_env["BOTCORE_CONFIG"] = str(config)
    args = [sys.executable, "-m", "botcore", "worker"]
    if concurrency:
        args += ["--concurrency", str(concurrency)]
    return subprocess.Popen(args, env=child_env, start_new_session=True)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group (warm shutdown), SIGKILL after ``timeout``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
    except ProcessLookupError:
        pass


def embedded_url_file(settings: Settings) -> Path:
    """Where a running ``botcore serve`` writes its embedded Redis URL (loopback, no
    password), so ``botcore inbox`` on the same machine finds it."""
    return Path(settings.data_dir) / "redis" / "url"


@contextmanager
def embedded_services(settings: Settings, *, config: Path | None = None,
                      with_worker: bool = True) -> Iterator[str]:
    """Start what ``settings`` does not point at; yield the Redis URL; stop them on exit."""
    redis: RedisProcess | None = None
    url = settings.redis_url
    if not url:
        redis = RedisProcess(Path(settings.data_dir) / "redis").start()
        url = redis.url
        embedded_url_file(settings).write_text(url, encoding="utf-8")
        log.info("embedded redis started", url=url, dir=str(redis.data_dir))
    # Qdrant's local mode allows one process per folder: without a Qdrant server the
    # embedded worker runs one pool process, so retrieval never meets a locked folder.
    concurrency = 1 if settings.kb.qdrant_url is None else None
    worker = (start_worker_process(url, config=config, concurrency=concurrency)
              if with_worker else None)
    try:
        yield url
    finally:
        if worker is not None:
            stop_process(worker)
        if redis is not None:
            embedded_url_file(settings).unlink(missing_ok=True)
            redis.stop()
