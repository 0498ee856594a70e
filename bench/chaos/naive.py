"""The baseline of the chaos benchmark: one Celery task per message, done "by the book".

``acks_late`` + ``task_reject_on_worker_lost``, prefetch multiplier 1, a 5 s visibility
timeout restored every second (reliability.md 1.3/1.4). The task sleeps 10-20 ms like the
bench bot, then appends its reply to the same kind of reply stream the web channel uses
(a plain ``XADD``, as a send without an idempotency record would). Run by
``celery -A bench.chaos.naive worker``; the broker URL comes from ``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

from celery import Celery
from redis import Redis

__all__ = ["TASK", "app", "naive_settings"]

TASK = "bench.naive_turn"


def naive_settings(redis_url: str) -> dict[str, Any]:
    """Celery settings of the baseline."""
    return {
        "broker_url": redis_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": 3,
        "broker_transport_options": {"visibility_timeout": 5, "unacked_restore_interval": 1,
                                     "unacked_restore_throttle": 1,
                                     "global_keyprefix": "naive:celery:"},
        "task_serializer": "json", "accept_content": ["json"], "task_ignore_result": True,
        "task_default_queue": "naive", "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
    }


# Building a Celery app does no I/O (it connects on first use); reading the URL is not I/O.
app = Celery("bench-naive", set_as_current=False)
app.conf.update(naive_settings(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")))
_clients: dict[int, Redis] = {}


def _redis() -> Redis:
    pid = os.getpid()
    if pid not in _clients:
        _clients[pid] = Redis.from_url(str(app.conf.broker_url))
    return _clients[pid]


@app.task(name=TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def naive_turn(outbox_key: str, seq: int, exec_key: str) -> None:
    """Fake model work, then reply (not idempotent: a re-run replies again)."""
    redis = _redis()
    redis.hincrby(exec_key, f"{outbox_key}#{seq}", 1)
    time.sleep(random.uniform(0.010, 0.020))
    redis.xadd(outbox_key, {"type": "message", "text": str(seq)})
