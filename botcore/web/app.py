"""The FastAPI application factory. Clients are built in the lifespan, never at import."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI

from botcore.channel import IngestFn
from botcore.errors import ConfigError
from botcore.ingress.inbox import Inbox
from botcore.metrics import WebMetrics
from botcore.queue import CeleryEnqueuer, Enqueuer
from botcore.queue.celery_app import make_celery
from botcore.runtime import Runtime
from botcore.settings import Settings
from botcore.web.health import build_health_router
from botcore.web.routes import Ingress, build_webhook_router

__all__ = ["create_app"]

log = structlog.get_logger("botcore.web")


def create_app(settings: Settings, *, redis_url: str | None = None,
               enqueuer: Enqueuer | None = None, listen: bool = True) -> FastAPI:
    """Build the web app: webhooks, web chat, health.

    Args:
        settings: validated settings.
        redis_url: overrides ``settings.redis_url`` (the embedded server sets it).
        enqueuer: overrides the Celery enqueuer (unit tests pass an inline one).
        listen: start the long-connection clients of bots configured for one.
    """
    url = redis_url or settings.redis_url
    # Fail fast: bad bot settings stop start-up here, not at the first message.
    runtime = Runtime.build(settings, redis_url=url)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.startup()
        inbox = Inbox(runtime.redis, runtime.keys, dedupe_ttl=settings.ingress.dedupe_ttl,
                      schedule_ttl=settings.ingress.schedule_ttl)
        queue = enqueuer
        if queue is None:
            celery_queue = CeleryEnqueuer(make_celery(settings, str(url)), settings.worker.queue)
            if not await asyncio.to_thread(celery_queue.prepare):
                log.warning("no drain-task template: publishing through send_task")
            queue = celery_queue
        app.state.runtime = runtime
        app.state.metrics = WebMetrics()
        app.state.ingress = Ingress(inbox, queue)
        listeners = _start_listeners(runtime, app.state.ingress) if listen else []
        gc.collect()
        gc.freeze()  # start-up objects never change: keep them out of full collections
        try:
            yield
        finally:
            for task in listeners:
                task.cancel()
            await runtime.close()

    app = FastAPI(title="botcore", version=_version(), lifespan=lifespan)
    app.include_router(build_webhook_router())
    app.include_router(build_health_router())
    _include_routers(app, settings)
    return app


def _start_listeners(runtime: Runtime, ingress: Ingress) -> list[asyncio.Task[Any]]:
    tasks = []
    for bot_id, adapter in runtime.adapters.items():
        listen = getattr(adapter, "listen", None)
        mode = runtime.settings.bots[bot_id].options.get("mode", "")
        # An adapter says whether this bot needs its loop (``listens``: WeCom's WeChat
        # Customer Service pulls messages next to a webhook); else the mode decides.
        wanted = getattr(adapter, "listens", mode in {"long_connection", "stream", "polling"})
        if listen is not None and wanted:
            log.info("starting long connection", bot=bot_id, mode=mode)
            tasks.append(asyncio.create_task(supervise(bot_id, listen, ingress.ingest),
                                             name=f"listen-{bot_id}"))
    return tasks


async def supervise(bot_id: str, listen: Callable[[IngestFn], Awaitable[None]],
                    ingest: IngestFn, *, first_delay: float = 1.0,
                    max_delay: float = 60.0) -> None:
    """Keep a long connection running: restart ``listen`` with backoff when it raises or
    returns (adapters reconnect by themselves; this is the last line of defence). A
    ConfigError (wrong credentials) stops it, loudly: retrying cannot help."""
    delay = first_delay
    while True:
        started = time.monotonic()
        try:
            await listen(ingest)
            log.warning("long connection ended; restarting", bot=bot_id)
        except ConfigError as exc:
            log.error("long connection stopped: fix the settings", bot=bot_id, error=str(exc))
            return
        except Exception as exc:
            log.error("long connection failed; restarting", bot=bot_id,
                      error=type(exc).__name__, retry_in=delay)
        if time.monotonic() - started > max_delay:
            delay = first_delay  # it ran for a while: start the backoff afresh
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


def _include_routers(app: FastAPI, settings: Settings) -> None:
    from botcore.handoff import handoff_router
    from botcore.web.chat import build_chat_router
    from botcore.web.openai_api import build_openai_router
    from botcore.web.widget import build_widget_router

    app.include_router(build_chat_router())
    app.include_router(build_openai_router(timeout=settings.answer_timeout))
    app.include_router(build_widget_router())
    key = settings.handoff.api_key
    app.include_router(handoff_router(key.get_secret_value() if key else None))


def _version() -> str:
    from botcore import __version__

    return __version__
