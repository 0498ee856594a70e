"""The web chat: the page at ``/chat``, the list of web bots, and the reply event stream.

Messages go in through the ordinary webhook route (``POST /webhooks/web/{bot_id}``); replies
come out of the conversation's Redis stream (written by
:class:`~botcore.webchat.WebChatAdapter`) as Server-Sent Events. Each SSE event id is the
stream entry id, so a client that reconnects with ``Last-Event-ID`` (or ``?last_id=``) gets
exactly what it missed.

Mount it with ``app.include_router(build_chat_router())``; it reads
``request.app.state.runtime`` (a :class:`~botcore.runtime.Runtime`) for everything else.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from botcore.errors import ConfigError
from botcore.redis_client import clamp_block_ms
from botcore.webchat import KEY_HEADER, WebChatAdapter, web_conversation

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from botcore.runtime import Runtime

__all__ = ["build_chat_router"]

STATIC_DIR = Path(__file__).parent / "static"
_ASSETS = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_ENTRY_ID = re.compile(r"^\d{1,20}(-\d{1,20})?$")
#: Entries read per XREAD call.
_BATCH = 100
_RETRY_MS = 2000
#: XREAD's answer: [(stream key, [(entry id, {field: value})])], bytes throughout.
_XReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


@dataclass(frozen=True, slots=True)
class _SseItem:
    """One thing to write on the event stream: an event, or a comment (keep-alive)."""

    data: str | None = None
    id: str | None = None
    comment: str | None = None
    retry: int | None = None

    def encode(self) -> bytes:
        """The wire format (used when sse-starlette is not installed)."""
        lines = []
        if self.comment is not None:
            lines.append(f": {self.comment}")
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.retry is not None:
            lines.append(f"retry: {self.retry}")
        if self.data is not None:
            lines.extend(f"data: {line}" for line in self.data.split("\n"))
        return ("\n".join(lines) + "\n\n").encode()


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _web_bots(runtime: Runtime) -> dict[str, WebChatAdapter]:
    """The bots served by the web chat, in settings order."""
    found: dict[str, WebChatAdapter] = {}
    for bot_id in runtime.settings.bots:
        try:
            adapter = runtime.adapter_for(bot_id, "web")  # its own, or its web front
        except ConfigError:
            continue
        if isinstance(adapter, WebChatAdapter):
            found[bot_id] = adapter
    return found


def _error(status: int, error: str, hint: str) -> JSONResponse:
    return JSONResponse({"error": error, "hint": hint}, status_code=status)


def _unknown_bot(bot_id: str, known: dict[str, WebChatAdapter]) -> JSONResponse:
    if known:
        hint = f"web chat bots here: {', '.join(sorted(known))}"
    else:
        hint = "add a [bots.<id>] table with channel = \"web\" to botcore.toml"
    return _error(404, f"unknown bot {bot_id!r}", hint)


async def _page(request: Request) -> Response:
    """Serve the chat page (``?bot=ID`` is read by the page's script)."""
    return FileResponse(STATIC_DIR / "chat.html", media_type="text/html; charset=utf-8",
                        headers=_PAGE_HEADERS)


async def _asset(name: str) -> Response:
    """Serve the page's script or stylesheet (a fixed list: no path from the URL is used)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        return _error(404, f"no asset {name!r}", f"one of {sorted(_ASSETS)}")
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=_PAGE_HEADERS)


async def _bots(request: Request) -> list[dict[str, Any]]:
    """The web bots: ``[{"id", "name", "key_required"}]``."""
    runtime = _runtime(request)
    return [
        {"id": bot_id, "name": runtime.settings.bots[bot_id].name or bot_id,
         "key_required": adapter.key_required}
        for bot_id, adapter in _web_bots(runtime).items()
    ]


def _decode_entry(fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A stream entry as the JSON the page reads (``buttons`` and ``citations`` parsed back
    to lists)."""
    event: dict[str, Any] = {k.decode(): v.decode() for k, v in fields.items()}
    for name in ("buttons", "citations"):
        if name in event:
            try:
                event[name] = json.loads(event[name])
            except ValueError:
                event[name] = []
    return event


async def _read_events(request: Request, redis: Redis, key: str, start: str,
                       block_ms: int) -> AsyncIterator[_SseItem]:
    """Relay the stream from ``start`` (exclusive) until the client goes away."""
    yield _SseItem(comment="connected", retry=_RETRY_MS)
    last = start
    while not await request.is_disconnected():
        reply = cast(_XReadReply, await redis.xread({key: last}, count=_BATCH, block=block_ms))
        if not reply:
            yield _SseItem(comment="keep-alive")
            continue
        for _stream, entries in reply:
            for raw_id, fields in entries:
                last = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                data = json.dumps(_decode_entry(fields), ensure_ascii=False)
                yield _SseItem(data=data, id=last)


def _sse_response(items: AsyncIterator[_SseItem], ping_s: float) -> Response:
    """An SSE response: sse-starlette when installed, else a plain streaming response."""
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    try:
        from sse_starlette import EventSourceResponse, ServerSentEvent
    except ImportError:  # pragma: no cover - sse-starlette is optional
        async def encoded() -> AsyncIterator[bytes]:
            async for item in items:
                yield item.encode()

        return StreamingResponse(encoded(), media_type="text/event-stream", headers=headers)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for item in items:
            yield ServerSentEvent(data=item.data, id=item.id, comment=item.comment,
                                  retry=item.retry)

    return EventSourceResponse(events(), headers=headers, ping=ping_s)


def _start_id(request: Request, last_id: str | None) -> str | None:
    """Where to resume: ``Last-Event-ID`` wins over ``?last_id``; default the beginning."""
    start = request.headers.get("last-event-id") or last_id or "0-0"
    return start if _ENTRY_ID.match(start) else None


def build_chat_router(*, block_ms: int = 15_000) -> APIRouter:
    """The web chat's routes: ``/chat``, ``/chat/static/*``, ``/chat/api/...``.

    Args:
        block_ms: how long one XREAD waits before a keep-alive comment is sent.

    Returns:
        A ``fastapi.APIRouter``; mount it with ``app.include_router(build_chat_router())``.

    Example:
        >>> app.include_router(build_chat_router())   # doctest: +SKIP
    """
    router = APIRouter()

    async def events(request: Request, bot_id: str, conversation_id: str = "",
                     last_id: str | None = None) -> Response:
        """Server-Sent Events of one conversation's replies, resumable by event id."""
        runtime = _runtime(request)
        known = _web_bots(runtime)
        adapter = known.get(bot_id)
        if adapter is None:
            return _unknown_bot(bot_id, known)
        if not adapter.check_key(request.headers.get(KEY_HEADER.lower())):
            return _error(401, f"missing or wrong {KEY_HEADER} header",
                          "send the bot's access_key in the X-Botcore-Key header")
        if not _CONVERSATION_ID.match(conversation_id):
            return _error(400, "invalid field 'conversation_id'", "1-128 of [A-Za-z0-9_-]")
        start = _start_id(request, last_id)
        if start is None:
            return _error(400, "invalid Last-Event-ID / last_id", "a stream id like 1-0")
        key = adapter.outbox_key(web_conversation(bot_id, conversation_id))
        items = _read_events(request, runtime.redis, key, start, clamp_block_ms(block_ms))
        return _sse_response(items, ping_s=max(block_ms / 1000 * 2, 1.0))

    router.add_api_route("/chat", _page, methods=["GET"], include_in_schema=False)
    router.add_api_route("/chat/static/{name}", _asset, methods=["GET"],
                         include_in_schema=False)
    router.add_api_route("/chat/api/bots", _bots, methods=["GET"])
    router.add_api_route("/chat/api/{bot_id}/events", events, methods=["GET"],
                         response_model=None)
    return router
