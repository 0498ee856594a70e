"""The fake WeCom plus WeChat Customer Service (微信客服) endpoints, shaped as documented.

* ``POST /cgi-bin/kf/sync_msg?access_token`` (94670) with ``{cursor?, token?, limit?,
  voice_format?, open_kfid}`` → ``{errcode, errmsg, next_cursor, has_more, msg_list}``;
  ``has_more`` is 1 or 0; ``limit`` defaults to and is capped at 1000; a ``token`` that was
  not issued by a callback → an error (errcode 95007 is our assumption: the docs name no code).
* ``POST /cgi-bin/kf/send_msg?access_token`` (94677) with ``{touser, open_kfid, msgid?,
  msgtype, text: {content}}`` → ``{errcode, errmsg, msgid}``; a ``msgid`` already used in
  the kf account is refused; content over 2048 bytes is refused.
* ``POST /cgi-bin/kf/send_msg_on_event?access_token`` (95122) with ``{code, msgid?, msgtype,
  text}`` → ``{errcode, errmsg, msgid}``; a code works once.

Test controls: :meth:`FakeKf.add` (a ``msg_list`` item), :meth:`FakeKf.callback_token`,
``page_size`` (fewer items per page than asked, as the docs warn may happen).
"""

from __future__ import annotations

import json
from typing import Any

from fake_wecom import FakeWeCom, _err
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

OPEN_KFID = "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q"
USER = "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw"


class FakeKf(FakeWeCom):
    """FakeWeCom with the kf message store."""

    def __init__(self, *args: Any, page_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.items: list[dict[str, Any]] = []
        self.page_size = page_size
        self.sync_calls: list[dict[str, Any]] = []
        self.kf_sent: list[dict[str, Any]] = []
        self.event_sent: list[dict[str, Any]] = []
        self.callback_tokens: set[str] = set()
        self.welcome_codes: set[str] = set()
        self._kf_ids: set[str] = set()
        self.app.router.routes[0:0] = [
            Route("/cgi-bin/kf/sync_msg", self.sync_msg, methods=["POST"]),
            Route("/cgi-bin/kf/send_msg", self.send_msg, methods=["POST"]),
            Route("/cgi-bin/kf/send_msg_on_event", self.send_msg_on_event, methods=["POST"]),
            Route("/_fake/kf_state", self.kf_state, methods=["GET"]),
        ]

    # ---- controls -----------------------------------------------------------------------
    def callback_token(self, value: str = "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR") -> str:
        """A ``Token`` as a kf callback carries it (accepted by sync_msg)."""
        self.callback_tokens.add(value)
        return value

    def add(self, msgid: str, *, text: str = "", origin: int = 3, open_kfid: str = OPEN_KFID,
            user: str = USER, send_time: int = 1615478585) -> dict[str, Any]:
        """A text message (origin 3 = the WeChat user, 5 = an agent)."""
        item = {"msgid": msgid, "open_kfid": open_kfid, "external_userid": user,
                "send_time": send_time, "origin": origin, "msgtype": "text",
                "text": {"content": text}}
        if origin == 5:
            item["servicer_userid"] = "zhangsan"
        self.items.append(item)
        return item

    def add_event(self, msgid: str, event_type: str, **event: Any) -> dict[str, Any]:
        """A system event (origin 4), e.g. ``enter_session`` with a ``welcome_code``."""
        if "welcome_code" in event:
            self.welcome_codes.add(str(event["welcome_code"]))
        item = {"msgid": msgid, "send_time": 1615478585, "origin": 4, "msgtype": "event",
                "event": {"event_type": event_type, "open_kfid": OPEN_KFID,
                          "external_userid": USER, **event}}
        self.items.append(item)
        return item

    # ---- endpoints ----------------------------------------------------------------------
    async def sync_msg(self, request: Request) -> JSONResponse:
        """94670: read messages after ``cursor`` (all of the last 3 days without one)."""
        if (error := self._token_error(request)) is not None:
            return error
        body = json.loads(await request.body())
        self.sync_calls.append(body)
        token = body.get("token")
        if token is not None and token not in self.callback_tokens:
            return _err(95007, "invalid msg token")
        kfid = body.get("open_kfid")
        mine = [i for i in self.items
                if (i.get("open_kfid") or i.get("event", {}).get("open_kfid")) == kfid]
        start = int(str(body.get("cursor") or "c0")[1:])
        limit = min(int(body.get("limit") or 1000), 1000, self.page_size)
        page = mine[start:start + limit]
        end = start + len(page)
        return _err(0, "ok", next_cursor=f"c{end}", has_more=int(end < len(mine)),
                    msg_list=page)

    async def send_msg(self, request: Request) -> JSONResponse:
        """94677: a message from the kf account to a WeChat user."""
        if (error := self._token_error(request)) is not None:
            return error
        body = json.loads(await request.body())
        if not body.get("touser") or not body.get("open_kfid"):
            return _err(40058, "invalid parameter")
        return self._record(body, self.kf_sent)

    async def send_msg_on_event(self, request: Request) -> JSONResponse:
        """95122: the welcome message, once per welcome_code."""
        if (error := self._token_error(request)) is not None:
            return error
        body = json.loads(await request.body())
        if body.get("code") not in self.welcome_codes:
            return _err(95018, "invalid code")  # errcode assumed
        self.welcome_codes.discard(body["code"])
        return self._record(body, self.event_sent)

    def _record(self, body: dict[str, Any], into: list[dict[str, Any]]) -> JSONResponse:
        if body.get("msgtype") != "text" or not isinstance(body.get("text"), dict):
            return _err(40008, "invalid message type")
        if len(str(body["text"].get("content", "")).encode()) > 2048:
            return _err(44004, "content size out of limit")
        msgid = body.get("msgid") or f"kfmsg{len(self._kf_ids)}"
        if msgid in self._kf_ids:
            return _err(40058, "msgid already used")  # errcode assumed
        self._kf_ids.add(msgid)
        into.append({**body, "msgid": msgid})
        return _err(0, "ok", msgid=msgid)

    async def kf_state(self, request: Request) -> JSONResponse:
        """What was sent, for a test in another process."""
        return JSONResponse({"kf_sent": self.kf_sent, "sync_calls": self.sync_calls})
