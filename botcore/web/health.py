"""``/healthz`` (alive), ``/readyz`` (Redis and a worker reachable), ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from botcore.metrics import WebMetrics
from botcore.runtime import Runtime

__all__ = ["build_health_router"]


def build_health_router() -> APIRouter:
    """The two probes."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        runtime: Runtime = request.app.state.runtime
        checks: dict[str, str] = {}
        try:
            await runtime.redis.ping()
            checks["redis"] = "ok"
            workers = [key async for key in runtime.redis.scan_iter(
                match=runtime.keys.worker_pattern(), count=100)]
            checks["worker"] = "ok" if workers else "no live worker heartbeat"
        except Exception as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
            checks.setdefault("worker", "unknown")
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(status_code=200 if ready else 503,
                            content={"status": "ready" if ready else "not ready", **checks})

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        runtime: Runtime = request.app.state.runtime
        registry: WebMetrics = request.app.state.metrics
        body = await registry.render(runtime.redis, runtime.keys)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
