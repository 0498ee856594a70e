"""A fake Telegram Bot API server: an ASGI app shaped as https://core.telegram.org/bots/api.

Routes ``POST|GET /bot<token>/<method>`` with parameters as JSON, form-urlencoded or query
string (as the Bot API accepts them), answers ``{"ok": true, "result": ...}`` or
``{"ok": false, "error_code": ..., "description": ..., "parameters": {...}}``, validates HTML
the way Telegram does (only its tags, balanced, only &lt; &gt; &amp; &quot; and numeric
entities, 1-4096 UTF-16 units of text after parsing) and records every call.

In-process (tests)::

    fake = FakeTelegram()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))

On a loopback port (end-to-end harness)::

    with serve_in_thread(fake) as base_url:    # "http://127.0.0.1:<port>"
        ...                                    # config: api_base = base_url

or ``uvicorn --factory --app-dir tests/adapters/telegram fake_telegram:create_app``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from botcore.testing.serve import serve_in_thread as serve_asgi

TOKEN = "123456789:AAH-fake-token_for-tests"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Botcore", "username": "botcore_bot"}
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span",
                 "tg-spoiler", "a", "code", "pre", "blockquote", "tg-emoji"}
_TAG = re.compile(r"<(/?)([a-zA-Z-]+)((?:\s+[a-zA-Z-]+(?:=\"[^\"<>]*\"|='[^'<>]*')?)*)\s*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ParseError(ValueError):
    """What Telegram reports as "can't parse entities"."""


def parse_html(text: str) -> str:
    """The plain text of a Bot API HTML message; ParseError where Telegram would refuse it."""
    out: list[str] = []
    stack: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "<":
            match = _TAG.match(text, pos)
            if not match or match.group(2).lower() not in _ALLOWED_TAGS:
                raise ParseError(f"unsupported start tag at byte offset {pos}")
            name = match.group(2).lower()
            if match.group(1):
                if not stack or stack.pop() != name:
                    raise ParseError(f"unmatched end tag at byte offset {pos}")
            else:
                stack.append(name)
            pos = match.end()
        elif char == "&":
            match = _ENTITY.match(text, pos)
            if not match:
                raise ParseError(f"unsupported entity at byte offset {pos}")
            ref = match.group(1)
            out.append(_NAMED.get(ref) or html.unescape(match.group(0)))
            pos = match.end()
        elif char == ">":
            raise ParseError(f"unescaped '>' at byte offset {pos}")
        else:
            out.append(char)
            pos += 1
    if stack:
        raise ParseError(f"can't find end tag corresponding to start tag {stack[-1]}")
    return "".join(out)


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class Call:
    """One recorded Bot API call."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class ApiError(Exception):
    """An ``ok: false`` answer."""

    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


class FakeTelegram:
    """The fake server's state and its ASGI ``app``.

    Args:
        token: the only token accepted (others get 401 Unauthorized).
        bot: the bot's User object, returned by getMe.
        poll_wait: the longest a getUpdates long poll waits here (seconds).
    """

    def __init__(self, token: str = TOKEN, bot: dict[str, Any] | None = None,
                 poll_wait: float = 0.5) -> None:
        self.token = token
        self.bot = dict(bot or BOT_USER)
        self.poll_wait = poll_wait
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.failures: dict[str, deque[ApiError]] = defaultdict(deque)
        self.migrated: dict[int, int] = {}
        self.webhook: dict[str, Any] | None = None
        self._next_id = 1000
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint,
                                           methods=["GET", "POST"])])

    # --- test controls --------------------------------------------------------------------

    def fail_next(self, method: str, code: int = 429, description: str = "",
                  times: int = 1, **parameters: Any) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (e.g. 429 with
        ``retry_after=1``)."""
        text = description or {429: "Too Many Requests: retry after "
                               f"{parameters.get('retry_after', 1)}",
                               500: "Internal Server Error"}.get(code, "Bad Request")
        for _ in range(times):
            self.failures[method].append(ApiError(code, text, **parameters))

    def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """Make ``old_chat_id`` a group upgraded to supergroup ``new_chat_id``."""
        self.migrated[old_chat_id] = new_chat_id

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates."""
        with self._lock:
            self.updates.append(update)

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every call to ``method``, in order."""
        return [call.params for call in self.calls if call.method == method]

    def texts(self, chat_id: int) -> list[str]:
        """The plain text of the messages in ``chat_id`` (after edits), oldest first."""
        return [msg["text"] for (chat, _), msg in sorted(self.messages.items())
                if chat == chat_id and "text" in msg]

    # --- HTTP -----------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        params: dict[str, Any] = dict(request.query_params)
        body = await request.body()
        ctype = request.headers.get("content-type", "")
        if body and "json" in ctype:
            params.update(json.loads(body))
        elif body:
            params.update({k: _maybe_json(v) for k, v in parse_qsl(body.decode())})
        self.calls.append(Call(method, params))
        try:
            if request.path_params["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            if self.failures[method]:
                raise self.failures[method].popleft()
            handler = getattr(self, f"_m_{method}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params)
        except ApiError as exc:
            answer: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                      "description": exc.description}
            if exc.parameters:
                answer["parameters"] = exc.parameters
            return JSONResponse(answer, status_code=exc.code)
        return JSONResponse({"ok": True, "result": result})

    # --- methods --------------------------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> int:
        chat_id = int(params["chat_id"])
        if chat_id in self.migrated:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to_chat_id=self.migrated[chat_id])
        return chat_id

    @staticmethod
    def _text(params: dict[str, Any], key: str = "text", limit: int = 4096,
              allow_empty: bool = False) -> str:
        raw = str(params.get(key) or "")
        try:
            plain = parse_html(raw) if params.get("parse_mode") == "HTML" else raw
        except ParseError as exc:
            raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
        if not plain.strip() and not allow_empty:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > limit:
            raise ApiError(400, "Bad Request: message is too long")
        return plain

    def _store(self, chat_id: int, **content: Any) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            message_id = self._next_id
        kind = "private" if chat_id > 0 else "supergroup"
        message = {"message_id": message_id, "date": int(time.time()),
                   "chat": {"id": chat_id, "type": kind}, "from": self.bot, **content}
        self.messages[(chat_id, message_id)] = message
        return message

    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot

    async def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        if not str(params.get("url", "")).startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        self.webhook = params
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        return True

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is "
                           "active; use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        with self._lock:  # an offset confirms every update before it
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), self.poll_wait)
        while True:
            with self._lock:
                ready = list(self.updates[: int(params.get("limit") or 100)])
            if ready or time.monotonic() >= deadline:
                return ready
            await asyncio.sleep(0.02)

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        text = self._text(params)
        return self._store(chat_id, text=text, html=params.get("text"),
                           reply_markup=params.get("reply_markup"))

    async def _m_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        text = self._text(params)
        message = self.messages.get((chat_id, int(params["message_id"])))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if message.get("text") == text and message.get("reply_markup") == markup:
            raise ApiError(400, "Bad Request: message is not modified: specified new message "
                           "content and reply markup are exactly the same as a current content "
                           "and reply markup of the message")
        message.update(text=text, html=params.get("text"), reply_markup=markup,
                       edit_date=int(time.time()))
        return message

    async def _m_deleteMessage(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat(params)
        if self.messages.pop((chat_id, int(params["message_id"])), None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    async def _m_sendMessageDraft(self, params: dict[str, Any]) -> bool:
        if int(params["chat_id"]) <= 0:
            raise ApiError(400, "Bad Request: chat not found")
        if not int(params.get("draft_id") or 0):
            raise ApiError(400, "Bad Request: draft_id must be non-zero")
        self._text(params, allow_empty=True)
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        self._chat(params)
        return True

    async def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        self._text(params, "caption", 1024, allow_empty=True)
        return self._store(chat_id, photo=[{"file_id": str(params["photo"]),
                                            "file_unique_id": "u", "width": 1, "height": 1}])

    async def _m_sendDocument(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat(params)
        self._text(params, "caption", 1024, allow_empty=True)
        return self._store(chat_id, document={"file_id": str(params["document"]),
                                              "file_unique_id": "u"})

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True


def _maybe_json(value: str) -> Any:
    if value[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def create_app() -> Starlette:
    """``uvicorn --factory fake_telegram:create_app``: a fresh fake with the default token."""
    return FakeTelegram().app


@contextlib.contextmanager
def serve_in_thread(fake: FakeTelegram) -> Iterator[str]:
    """Serve ``fake.app`` on a loopback port; yields the base URL."""
    with serve_asgi(fake.app) as base_url:
        yield base_url
