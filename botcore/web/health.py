"""``/healthz`` (alive), ``/readyz`` (this process can store webhooks), ``/metrics``.

Readiness is about this web process only: Redis answers and the runtime has started, so a
webhook can be stored. Workers being down must not take the API offline: the inbox keeps
what arrives until a worker is back, while an API removed from the load balancer makes
platforms give up (WeCom stops after three tries). Workers are reported instead: their live
count in the ``/readyz`` body, a ``botcore_workers_live`` gauge, and ``/readyz?workers=1`` for
whoever does want to wait for a worker (tests, ``docker compose`` checks).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from botcore.metrics import WebMetrics
from botcore.queue.celery_app import live_workers
from botcore.runtime import Runtime

__all__ = ["build_health_router"]


def build_health_router() -> APIRouter:
    """The probes and ``/metrics``."""
    router = APIRouter()
    # Per router (so per app): no global registry.
    registry = CollectorRegistry()
    workers_gauge = Gauge("botcore_workers_live", "Workers whose heartbeat is fresh",
                          registry=registry)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}  # liveness: never depends on Redis or the workers

    @router.get("/readyz")
    async def readyz(request: Request, workers: bool = False) -> JSONResponse:
        checks: dict[str, Any] = {"redis": "unknown", "runtime": "starting"}
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None and getattr(request.app.state, "ingress", None) is not None:
            checks["runtime"] = "ok"
        ready = False
        if runtime is not None:
            try:
                await runtime.redis.ping()
                checks["redis"] = "ok"
                checks["workers"] = await live_workers(runtime.redis, runtime.keys)
                ready = checks["runtime"] == "ok"
            except Exception as exc:
                checks["redis"] = f"unreachable: {type(exc).__name__}"
        if workers:
            live = checks.get("workers", 0)
            checks["worker"] = "ok" if live else "no live worker heartbeat"
            ready = ready and bool(live)
        return JSONResponse(status_code=200 if ready else 503,
                            content={"status": "ready" if ready else "not ready", **checks})

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        web: WebMetrics = request.app.state.metrics
        body = await web.render(runtime.redis, runtime.keys)
        workers_gauge.set(await live_workers(runtime.redis, runtime.keys))
        return Response(body + generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
