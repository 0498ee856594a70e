"""The website widget: ``/widget.js``, the chat frame it opens, and feedback on answers.

A page embeds ``<script src="https://HOST/widget.js" data-bot="ID"></script>``. The script
adds a chat bubble; the chat itself runs in an iframe served from botcore (``/widget/frame``),
so it talks to the web chat endpoints (``POST /webhooks/web/{bot}``, the SSE stream at
``/chat/api/{bot}/events``) from botcore's own origin: no cross-origin request is needed,
the host page cannot read the conversation, and its styles cannot break the chat.

Which sites may embed a bot is its ``allowed_origins`` web option (``[bots.<id>]`` for a web
bot, ``[bots.<id>.web]`` for the others): the frame is served with
``Content-Security-Policy: frame-ancestors 'self' <allowed origins>``, so browsers refuse to
show it on any other site, and botcore's endpoints refuse requests whose ``Origin`` is
neither botcore's own nor allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from botcore.errors import ConfigError
from botcore.metrics import record_rating, stored_rating
from botcore.webchat import CONVERSATION_ID_PATTERN, KEY_HEADER, WebChatAdapter

if TYPE_CHECKING:
    from botcore.runtime import Runtime

__all__ = ["FEEDBACK_TTL", "build_widget_router", "feedback_key", "frame_ancestors"]

STATIC_DIR = Path(__file__).parent / "static"
#: Seconds a feedback record is kept.
FEEDBACK_TTL = 90 * 86_400
_MAX_FEEDBACK_BYTES = 8 * 1024
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_BOT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300",
                  "Cross-Origin-Resource-Policy": "cross-origin"}


class _Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    conversation_id: str = Field(pattern=CONVERSATION_ID_PATTERN)
    message_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")
    rating: Literal["up", "down"]
    comment: str = Field("", max_length=1000)


def _error(status: int, error: str, hint: str = "") -> JSONResponse:
    return JSONResponse({"error": error, "hint": hint}, status_code=status)


def _web_adapter(request: Request, bot_id: str) -> WebChatAdapter | None:
    """The adapter answering ``bot_id`` on the web (its own, or its web front)."""
    runtime: Runtime = request.app.state.runtime
    try:
        adapter = runtime.adapter_for(bot_id, "web")
    except ConfigError:
        return None
    return adapter if isinstance(adapter, WebChatAdapter) else None


def frame_ancestors(allowed: list[str]) -> str:
    """The CSP ``frame-ancestors`` sources for a bot's ``allowed_origins``.

    Entries that are not plain ``scheme://host[:port]`` origins are dropped, so an option can
    never inject into the header.

    Example:
        >>> frame_ancestors(["https://a.example", "javascript:x"])
        "'self' https://a.example"
    """
    if "*" in allowed:
        return "*"
    origins = [o.rstrip("/") for o in allowed if _ORIGIN.match(o.rstrip("/"))]
    return " ".join(["'self'", *dict.fromkeys(origins)])


def origin_allowed(headers: Mapping[str, str], allowed: list[str]) -> bool:
    """No ``Origin`` (not a browser), botcore's own origin, or one of ``allowed``."""
    origin = headers.get("origin")
    if not origin:
        return True
    if "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}:
        return True
    host = (headers.get("x-forwarded-host") or headers.get("host") or "").split(",")[0]
    return bool(host.strip()) and urlsplit(origin).netloc.lower() == host.strip().lower()


def feedback_key(request: Request, bot_id: str, conversation_id: str, message_id: str) -> str:
    """Where one rating is stored (the web channel's state family of the key builder)."""
    runtime: Runtime = request.app.state.runtime
    return runtime.keys.feedback(bot_id, conversation_id, message_id)


async def _script() -> Response:
    """The embeddable script (also the frame's script)."""
    return FileResponse(STATIC_DIR / "widget.js", media_type="text/javascript; charset=utf-8",
                        headers=_ASSET_HEADERS)


async def _stylesheet() -> Response:
    """The frame's stylesheet."""
    return FileResponse(STATIC_DIR / "widget.css", media_type="text/css; charset=utf-8",
                        headers=_ASSET_HEADERS)


async def _frame(request: Request, bot: str = "") -> Response:
    """The chat frame for ``?bot=ID``; only the bot's allowed origins may embed it."""
    adapter = _web_adapter(request, bot) if _BOT_ID.match(bot) else None
    if adapter is None:
        return _error(404, f"unknown bot {bot!r}", "data-bot must name a configured bot")
    csp = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           f"frame-ancestors {frame_ancestors(adapter.config.allowed_origins)}")
    headers = {"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}
    return FileResponse(STATIC_DIR / "widget.html", media_type="text/html; charset=utf-8",
                        headers=headers)


async def _feedback(request: Request, bot_id: str) -> Response:
    """Store a 👍/👎 on one answer: ``{conversation_id, message_id, rating, comment?}``."""
    adapter = _web_adapter(request, bot_id)
    if adapter is None:
        return _error(404, f"unknown bot {bot_id!r}")
    if not origin_allowed(request.headers, adapter.config.allowed_origins):
        return _error(403, "origin not allowed", "see the bot's allowed_origins")
    if not adapter.check_key(request.headers.get(KEY_HEADER.lower())):
        return _error(401, f"missing or wrong {KEY_HEADER} header")
    body = await request.body()
    if len(body) > _MAX_FEEDBACK_BYTES:
        return _error(413, f"body larger than {_MAX_FEEDBACK_BYTES} bytes")
    try:
        data = json.loads(body)
        feedback = _Feedback.model_validate(data)
    except RecursionError:
        return _error(400, "body is nested too deeply")
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors(include_input=False, include_url=False)[0]
            field = ".".join(str(p) for p in first["loc"]) or "body"
            return _error(400, f"invalid field '{field}'", str(first["msg"]))
        return _error(400, "body is not valid JSON")
    runtime: Runtime = request.app.state.runtime
    key = feedback_key(request, bot_id, feedback.conversation_id, feedback.message_id)
    previous = await runtime.redis.set(key, feedback.model_dump_json(), ex=FEEDBACK_TTL,
                                       get=True)
    await record_rating(runtime.redis, runtime.keys, kind="widget", bot_id=bot_id,
                        rating=feedback.rating, previous=stored_rating(previous))
    return JSONResponse({"ok": True})


def build_widget_router() -> APIRouter:
    """The widget's routes: ``/widget.js``, ``/widget/frame``, ``/widget/static/widget.css``
    and ``POST /widget/api/{bot_id}/feedback``.

    Returns:
        A ``fastapi.APIRouter``; it reads ``app.state.runtime``.

    Example:
        >>> app.include_router(build_widget_router())   # doctest: +SKIP
    """
    router = APIRouter(tags=["widget"])
    router.add_api_route("/widget.js", _script, methods=["GET"], include_in_schema=False)
    router.add_api_route("/widget/static/widget.css", _stylesheet, methods=["GET"],
                         include_in_schema=False)
    router.add_api_route("/widget/frame", _frame, methods=["GET"], include_in_schema=False)
    router.add_api_route("/widget/api/{bot_id}/feedback", _feedback, methods=["POST"],
                         response_model=None)
    return router
