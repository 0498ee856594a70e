"""The webhook route: verify → parse → dedupe → inbox → schedule → acknowledge.

Nothing here talks to a platform or a model: the acknowledgement goes out as soon as the
message is durable in Redis (style rule R1). If Redis cannot be written the answer is 503,
so the platform retries instead of losing the message.
"""

from __future__ import annotations

import time

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from botcore.channel import Accepted, Challenge, Rejected, WebhookOutcome, WebhookRequest
from botcore.errors import ConfigError, IngressError, SignatureError
from botcore.ingress.inbox import Admission, Inbox
from botcore.message import InboundMessage
from botcore.metrics import WebMetrics
from botcore.queue import Enqueuer
from botcore.runtime import Runtime

__all__ = ["Ingress", "build_webhook_router"]

log = structlog.get_logger("botcore.webhook")


class Ingress:
    """dedupe → inbox → schedule, shared by webhooks and long connections.

    :meth:`ingest` is the :data:`~botcore.channel.IngestFn` long-connection clients call.
    """

    def __init__(self, inbox: Inbox, enqueuer: Enqueuer) -> None:
        self.inbox = inbox
        self.enqueuer = enqueuer

    async def ingest(self, message: InboundMessage) -> bool:
        """Store ``message``; True if new, False if a redelivery. Raises IngressError."""
        return not (await self.admit(message)).duplicate

    async def admit(self, message: InboundMessage, *, limit_per_minute: int = 0) -> Admission:
        """Store ``message`` and make sure a drain is scheduled; the full outcome."""
        prebuilt = getattr(self.enqueuer, "prebuilt", None)
        drain_task = prebuilt(message.conversation.id) if prebuilt is not None else None
        admission = await self.inbox.admit(message, drain_task=drain_task,
                                           limit_per_minute=limit_per_minute)
        if admission.schedule:  # no prebuilt message: publish through the enqueuer
            try:
                await self.enqueuer.schedule(admission.conversation_id)
            except Exception as exc:  # durable already: the sweeper will schedule it
                log.warning("could not schedule a drain", error=type(exc).__name__)
        return admission


def _unknown_bot(channel: str, bot_id: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={
        "error": f"unknown bot {bot_id!r} on channel {channel!r}",
        "hint": "bots are [bots.<id>] tables in botcore.toml; the URL is "
                "/webhooks/<channel>/<bot id>",
    })


async def _read_capped(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _respond(outcome: Challenge | Accepted) -> Response:
    return Response(content=outcome.body if isinstance(outcome, Challenge) else outcome.ack_body,
                    status_code=outcome.status if isinstance(outcome, Challenge) else 200,
                    media_type=outcome.content_type)


def build_webhook_router() -> APIRouter:
    """``GET|POST /webhooks/{channel}/{bot_id}``."""
    router = APIRouter()

    @router.api_route("/webhooks/{channel}/{bot_id}", methods=["GET", "POST"],
                      include_in_schema=True, summary="Platform callback")
    async def webhook(channel: str, bot_id: str, request: Request) -> Response:
        started = time.perf_counter()
        response, outcome = await _process(channel, bot_id, request)
        metrics: WebMetrics | None = getattr(request.app.state, "metrics", None)
        if metrics is not None:  # unknown channels share one label: bounded cardinality
            label = "unknown" if outcome == "unknown_bot" else channel
            metrics.webhooks.labels(channel=label, outcome=outcome).inc()
            metrics.latency.labels(channel=label).observe(time.perf_counter() - started)
        return response

    return router


async def _process(channel: str, bot_id: str, request: Request) -> tuple[Response, str]:
    """Verify, parse, store; the response and a short outcome label for the metrics."""
    runtime: Runtime = request.app.state.runtime
    ingress: Ingress = request.app.state.ingress
    try:
        adapter = runtime.adapter_for(bot_id, channel)
    except ConfigError:
        return _unknown_bot(channel, bot_id), "unknown_bot"
    body = await _read_capped(request, runtime.settings.ingress.max_body_bytes)
    if body is None:
        return JSONResponse(status_code=413, content={"error": "body too large"}), "too_large"
    outcome = await _handle(adapter, request, body, bot_id)
    if isinstance(outcome, Rejected):
        log.info("webhook rejected", bot=bot_id, status=outcome.status, reason=outcome.reason)
        return (JSONResponse(status_code=outcome.status, content={"error": outcome.reason}),
                "rejected")
    if isinstance(outcome, Challenge):
        return _respond(outcome), "challenge"
    try:
        admitted = [await ingress.admit(message, limit_per_minute=outcome.limit_per_minute)
                    for message in outcome.messages]
    except IngressError as exc:
        log.error("durable write failed; answering 503", bot=bot_id, error=str(exc))
        return JSONResponse(status_code=503, content={
            "error": "temporarily unable to store the message; retry"}), "unavailable"
    if any(admission.limited for admission in admitted):
        return JSONResponse(status_code=429, content={
            "error": f"more than {outcome.limit_per_minute} messages a minute in this "
                     "conversation; wait a little"}), "limited"
    fresh = [not admission.duplicate for admission in admitted]
    label = "accepted" if any(fresh) else ("duplicate" if fresh else "ignored")
    return _respond(outcome), label


async def _handle(adapter: object, request: Request, body: bytes,
                  bot_id: str) -> WebhookOutcome:
    hook = WebhookRequest(
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params), body=body,
    )
    try:
        return await adapter.handle_webhook(hook)  # type: ignore[attr-defined, no-any-return]
    except SignatureError as exc:
        return Rejected(exc.status, exc.reason)
    except (ValueError, KeyError, TypeError, UnicodeError) as exc:  # an adapter missed a case
        log.warning("adapter raised on bad input", bot=bot_id, error=type(exc).__name__)
        return Rejected(400, "malformed request")
