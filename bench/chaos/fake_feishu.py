"""A fake Feishu Open API for the chaos benchmark, recording into Redis.

Shaped as the Open Platform docs (and ``tests/adapters/feishu/fake_feishu.py``) describe the
calls a bot answering in chats makes:

* ``POST /open-apis/auth/v3/tenant_access_token/internal`` (``app_id``, ``app_secret``) ->
  ``{"code": 0, "msg": "ok", "tenant_access_token", "expire"}``; wrong credentials -> 10014;
* ``POST /open-apis/im/v1/messages?receive_id_type=chat_id`` and
  ``POST /open-apis/im/v1/messages/{message_id}/reply``: ``Authorization: Bearer <token>``
  (else HTTP 400, code 99991663), ``msg_type``, ``content`` a JSON **string**, optional
  ``uuid``: the same ``uuid`` within 1 hour creates nothing new and answers the first
  message (``{"code": 0, "data": {"message_id": <the first one>, ...}}``).

A reply lands in the chat of the message it answers. Feishu knows that from its message
store; the bench's user messages carry their chat in their id (``om_u-<chat_id>-<n>``), which
stands in for it. Latency, recording and the call log: :mod:`bench.chaos.fake_common`
(prefix ``bench:fs``; calls ``create`` and ``reply`` are logged).

Run as ``uvicorn --factory bench.chaos.fake_feishu:create_app``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from bench.chaos.fake_common import Recorder, create_fake, json_response

__all__ = ["APP_ID", "APP_SECRET", "PREFIX", "USER_MESSAGE", "create_app"]

APP_ID = "cli_chaosbench0001"
APP_SECRET = "chaos-bench-app-secret"
PREFIX = "bench:fs"
#: The id of a user message in chat ``chat_id``: ``USER_MESSAGE.format(chat, n)``.
USER_MESSAGE = "om_u-{}-{}"
UUID_WINDOW = 3600.0
_TOKEN = "t-chaosbench-tenant-token"


def _error(code: int, msg: str, status: int = 400) -> Response:
    return json_response({"code": code, "msg": msg}, status)


async def _token(rec: Recorder, request: Request, body: bytes) -> tuple[str, Response]:
    params = json.loads(body or b"{}")
    if params.get("app_id") != APP_ID or params.get("app_secret") != APP_SECRET:
        return "token", _error(10014, "app secret invalid")
    return "token", json_response({"code": 0, "msg": "ok", "tenant_access_token": _TOKEN,
                                   "expire": 7200})


async def _message(rec: Recorder, request: Request, body: bytes, chat: str,
                   **where: Any) -> Response:
    if request.headers.get("authorization") != f"Bearer {_TOKEN}":
        return _error(99991663, "Invalid access token for authorization.")
    params = json.loads(body or b"{}")
    try:
        content = json.loads(params.get("content"))
        text = str(content.get("text") or "")
    except (TypeError, ValueError, AttributeError):
        return _error(230001, "invalid request parameter: content must be a JSON string")
    if not chat or not params.get("msg_type") or not text.strip():
        return _error(230001, "invalid request parameter")
    _created, message_id = await rec.create(chat, text, "om_b", uuid=str(params.get("uuid")
                                                                          or ""),
                                            uuid_ttl=UUID_WINDOW)
    return json_response({"code": 0, "msg": "success", "data": {
        "message_id": message_id, "msg_type": params["msg_type"], "chat_id": chat,
        "create_time": str(int(time.time() * 1000)), **where}})


async def _create(rec: Recorder, request: Request, body: bytes) -> tuple[str, Response]:
    if request.query_params.get("receive_id_type") != "chat_id":
        return "create", _error(230001, "invalid receive_id_type")
    chat = str(json.loads(body or b"{}").get("receive_id") or "")
    return "create", await _message(rec, request, body, chat)


async def _reply(rec: Recorder, request: Request, body: bytes) -> tuple[str, Response]:
    parent = request.path_params["message_id"]
    parts = parent.split("-")
    if len(parts) != 3 or parts[0] != "om_u":
        return "reply", _error(230011, "the message was not found")
    return "reply", await _message(rec, request, body, parts[1], parent_id=parent)


def create_app() -> Starlette:
    """The fake, recording into ``BENCH_REDIS_URL``."""
    api = "/open-apis"
    return create_fake(PREFIX, [
        (f"{api}/auth/v3/tenant_access_token/internal", "POST", _token),
        (f"{api}/im/v1/messages", "POST", _create),
        (f"{api}/im/v1/messages/{{message_id}}/reply", "POST", _reply),
    ], frozenset({"create", "reply"}))
