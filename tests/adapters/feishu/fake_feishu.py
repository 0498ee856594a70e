"""A fake Feishu Open Platform, shaped as the official docs describe the endpoints botcore uses.

Use in-process through ``httpx.ASGITransport(app=create_app(state))``, or serve it::

    uvicorn --factory tests.adapters.feishu.fake_feishu:create_app --port 8765

and read what it received from ``GET /_fake/state`` (``POST /_fake/throttle`` makes the next
calls answer 429). Behaviour copied from the docs:

* ``POST /open-apis/auth/v3/tenant_access_token/internal`` -> ``tenant_access_token``,
  ``expire`` (s); wrong credentials -> code 10014.
* every other call needs ``Authorization: Bearer <token>``; unknown or revoked tokens ->
  HTTP 400, code 99991663.
* ``POST im/v1/messages?receive_id_type=chat_id`` and ``POST im/v1/messages/{id}/reply``:
  ``content`` is a JSON **string**; the same ``uuid`` within 1 h sends nothing new and answers
  the first message.
* ``POST im/v1/images`` / ``im/v1/files`` (multipart) -> ``image_key`` / ``file_key``.
* CardKit: ``POST cardkit/v1/cards`` (card_json), ``PUT .../elements/{id}/content``,
  ``PATCH .../settings``; ``sequence`` must increase per card.
* ``GET bot/v3/info`` -> ``{"code":0,"msg":"ok","bot":{"activate_status","app_name",
  "avatar_url","ip_white_list","open_id"}}`` (top-level ``bot``, no ``data``).
* throttled calls answer HTTP 429, code 99991400, header ``x-ogw-ratelimit-reset``.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

UUID_WINDOW = 3600.0


@dataclass
class FakeFeishu:
    """What the fake server knows and recorded. Inspect it in tests."""

    app_id: str = "cli_test"
    app_secret: str = "secret"
    token_expire: int = 7200
    clock: Callable[[], float] = time.time
    tokens: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    messages: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    throttle: int = 0
    throttle_reset: float = 1.0
    fail_card_updates: int = 0
    bot_open_id: str = "ou_fake_bot"
    app_name: str = "Helpdesk"
    _uuids: dict[str, tuple[float, dict[str, Any]]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self, prefix: str) -> str:
        """A fresh id like Feishu's (``om_...``, ``img_v2_...``)."""
        return f"{prefix}{next(self._ids):06d}"

    def snapshot(self) -> dict[str, Any]:
        """JSON view for ``GET /_fake/state``."""
        return {"tokens": len(self.tokens), "messages": self.messages, "uploads": self.uploads,
                "cards": self.cards, "calls": self.calls}


def _err(code: int, msg: str, status: int = 400, **headers: str) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg}, status_code=status, headers=headers)


def _ok(data: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"code": 0, "msg": "success", "data": data or {}})


def _guard(state: FakeFeishu, request: Request) -> JSONResponse | None:
    state.calls.append(f"{request.method} {request.url.path}")
    if state.throttle > 0:
        state.throttle -= 1
        return _err(99991400, "request trigger frequency limit", 429,
                    **{"x-ogw-ratelimit-limit": "5",
                       "x-ogw-ratelimit-reset": str(state.throttle_reset)})
    auth = request.headers.get("authorization", "")
    token = auth.removeprefix("Bearer ")
    if not auth.startswith("Bearer ") or token not in state.tokens or token in state.revoked:
        return _err(99991663, "Invalid access token for authorization.")
    return None


async def _token(state: FakeFeishu, request: Request) -> JSONResponse:
    state.calls.append(f"{request.method} {request.url.path}")
    body = await request.json()
    if body.get("app_id") != state.app_id or body.get("app_secret") != state.app_secret:
        return _err(10014, "app secret invalid")
    token = f"t-{state.next_id('tok')}"
    state.tokens.append(token)
    return JSONResponse({"code": 0, "msg": "ok", "tenant_access_token": token,
                         "expire": state.token_expire})


def _content(body: dict[str, Any]) -> dict[str, Any] | None:
    raw = body.get("content")
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _post_message(state: FakeFeishu, body: dict[str, Any], **where: Any) -> JSONResponse:
    uuid = body.get("uuid")
    now = state.clock()
    if uuid and uuid in state._uuids and now - state._uuids[uuid][0] < UUID_WINDOW:
        return _ok(state._uuids[uuid][1])  # idempotent: the first message, nothing new sent
    content = _content(body)
    if content is None or not body.get("msg_type"):
        return _err(230001, "invalid request parameter: content must be a JSON string")
    if body["msg_type"] == "interactive" and content.get("type") == "card":
        card_id = content.get("data", {}).get("card_id")
        if card_id not in state.cards:
            return _err(230099, "card_id not found")
    data = {"message_id": state.next_id("om_"), "msg_type": body["msg_type"],
            "create_time": str(int(now * 1000)), **where}
    state.messages.append({**data, "content": content, "uuid": uuid,
                           "reply_in_thread": body.get("reply_in_thread", False)})
    if uuid:
        state._uuids[uuid] = (now, data)
    return _ok(data)


class _Api:
    """Route handlers bound to one :class:`FakeFeishu` state."""

    def __init__(self, state: FakeFeishu) -> None:
        self.state = state

    async def token(self, request: Request) -> JSONResponse:
        return await _token(self.state, request)

    async def send(self, request: Request) -> JSONResponse:
        if (denied := _guard(self.state, request)) is not None:
            return denied
        if request.query_params.get("receive_id_type") not in ("chat_id", "open_id",
                                                                "user_id", "union_id", "email"):
            return _err(230001, "invalid receive_id_type")
        body = await request.json()
        return _post_message(self.state, body, chat_id=body.get("receive_id"))

    async def reply(self, request: Request) -> JSONResponse:
        if (denied := _guard(self.state, request)) is not None:
            return denied
        return _post_message(self.state, await request.json(),
                             parent_id=request.path_params["message_id"])

    async def bot_info(self, request: Request) -> JSONResponse:
        if (denied := _guard(self.state, request)) is not None:
            return denied
        return JSONResponse({"code": 0, "msg": "ok", "bot": {
            "activate_status": 2, "app_name": self.state.app_name,
            "avatar_url": "https://example.invalid/a.png", "ip_white_list": [],
            "open_id": self.state.bot_open_id}})

    async def upload(self, request: Request) -> JSONResponse:
        if (denied := _guard(self.state, request)) is not None:
            return denied
        fields = _multipart(request.headers.get("content-type", ""), await request.body())
        kind = "image" if request.url.path.endswith("images") else "file"
        blob = fields.get(kind)
        if blob is None or (kind == "image" and fields.get("image_type") != b"message"):
            return _err(234001, "invalid upload parameters")
        key = self.state.next_id("img_v2_" if kind == "image" else "file_v3_")
        self.state.uploads.append({"kind": kind, "key": key, "size": len(blob),
                                   "file_name": (fields.get("file_name") or b"").decode()})
        return _ok({f"{kind}_key": key})

    async def create_card(self, request: Request) -> JSONResponse:
        if (denied := _guard(self.state, request)) is not None:
            return denied
        body = await request.json()
        if body.get("type") != "card_json" or not isinstance(body.get("data"), str):
            return _err(230001, "invalid card")
        card = json.loads(body["data"])
        card_id = self.state.next_id("card_")
        self.state.cards[card_id] = {
            "card": card, "sequence": 0, "contents": [], "sequences": [],
            "streaming_mode": card.get("config", {}).get("streaming_mode")}
        return _ok({"card_id": card_id})

    async def card_update(self, request: Request) -> JSONResponse:
        if (denied := _guard(self.state, request)) is not None:
            return denied
        if self.state.fail_card_updates > 0:  # an outage: the update never reached the card
            self.state.fail_card_updates -= 1
            return _err(1, "internal error", 500)
        card = self.state.cards.get(request.path_params["card_id"])
        if card is None:
            return _err(300301, "card not found")
        body = await request.json()
        seq = body.get("sequence")
        if not isinstance(seq, int) or seq <= card["sequence"]:
            return _err(300317, "sequence number compare failed")
        card["sequence"] = seq
        card["sequences"].append(seq)
        if request.method == "PUT":
            card["contents"].append(body.get("content"))
        else:
            settings = json.loads(body.get("settings") or "{}")
            card["streaming_mode"] = settings.get("config", {}).get(
                "streaming_mode", card["streaming_mode"])
        return _ok()

    async def fake_state(self, request: Request) -> JSONResponse:
        return JSONResponse(self.state.snapshot())

    async def fake_throttle(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.state.throttle = int(body.get("count", 1))
        self.state.throttle_reset = float(body.get("reset", 1))
        return JSONResponse({"ok": True})


def build_routes(state: FakeFeishu) -> list[Route]:
    """The Starlette routes of the fake, bound to ``state``."""
    api, h = "/open-apis", _Api(state)
    content = f"{api}/cardkit/v1/cards/{{card_id}}/elements/{{element_id}}/content"
    return [
        Route(f"{api}/auth/v3/tenant_access_token/internal", h.token, methods=["POST"]),
        Route(f"{api}/bot/v3/info", h.bot_info, methods=["GET"]),
        Route(f"{api}/im/v1/messages", h.send, methods=["POST"]),
        Route(f"{api}/im/v1/messages/{{message_id}}/reply", h.reply, methods=["POST"]),
        Route(f"{api}/im/v1/images", h.upload, methods=["POST"]),
        Route(f"{api}/im/v1/files", h.upload, methods=["POST"]),
        Route(f"{api}/cardkit/v1/cards", h.create_card, methods=["POST"]),
        Route(content, h.card_update, methods=["PUT"]),
        Route(f"{api}/cardkit/v1/cards/{{card_id}}/settings", h.card_update, methods=["PATCH"]),
        Route("/_fake/state", h.fake_state, methods=["GET"]),
        Route("/_fake/throttle", h.fake_throttle, methods=["POST"]),
    ]


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, bytes] = {}
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


def create_app(state: FakeFeishu | None = None) -> Starlette:
    """The ASGI app (``uvicorn --factory ...:create_app`` uses a fresh default state)."""
    return Starlette(routes=build_routes(state or FakeFeishu()))
