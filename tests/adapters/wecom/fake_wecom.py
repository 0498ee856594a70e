"""A fake WeCom API server (Starlette), shaped as the official docs describe it.

Endpoints (https://developer.work.weixin.qq.com/document/path/<n>):

* ``GET  /cgi-bin/gettoken?corpid&corpsecret`` (91039) → ``{errcode, errmsg, access_token,
  expires_in}``; a wrong corpid → 40013, a wrong secret → 40001.
* ``POST /cgi-bin/message/send?access_token`` (90236) → ``{errcode, errmsg, invaliduser,
  msgid}``; no token → 41001, unknown token → 40014, expired token → 42001, wrong agentid →
  40056, no recipient → 81013.
* ``POST /cgi-bin/media/upload?access_token&type`` (multipart field ``media``) →
  ``{errcode, errmsg, type, media_id, created_at}``.
* ``POST /cgi-bin/webhook/send?key`` (99110, group robot) → ``{errcode, errmsg}``; unknown key
  → 93000; more than 20 messages a minute → 45009.
* ``POST /cgi-bin/aibot/response?response_code`` (101138) → ``{errcode, errmsg}``; usable once.

Test controls: :meth:`FakeWeCom.expire_tokens` (every issued token answers 42001 from now
on), :meth:`FakeWeCom.fail_next` (the next ``message/send`` answers that errcode). The same
controls and the recorded traffic are reachable over HTTP under ``/_fake/`` so the server can
run in another process::

    python tests/adapters/wecom/fake_wecom.py --port 18080
    # or: uvicorn --factory fake_wecom:create_app --port 18080 (from tests/adapters/wecom)
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

CORP_ID = "wwfakecorp0001"
SECRET = "fake-app-secret"
AGENT_ID = 1000002
ROBOT_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


def _err(errcode: int, errmsg: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg, **extra})


class FakeWeCom:
    """In-memory WeCom: tokens, sent messages, uploaded media, robot and AI bot replies."""

    def __init__(self, corp_id: str = CORP_ID, secret: str = SECRET, agent_id: int = AGENT_ID,
                 robot_keys: tuple[str, ...] = (ROBOT_KEY,), token_ttl: int = 7200,
                 clock: Callable[[], float] = time.time) -> None:
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.robot_keys = set(robot_keys)
        self.token_ttl = token_ttl
        self.clock = clock
        self.tokens: dict[str, float] = {}  # access_token → expires_at
        self.gettoken_calls = 0
        self.sent: list[dict[str, Any]] = []
        self.media: dict[str, dict[str, Any]] = {}
        self.robot_sent: list[dict[str, Any]] = []
        self.aibot_responses: list[dict[str, Any]] = []
        self.response_codes_used: set[str] = set()
        self._failures: list[tuple[int, str]] = []
        self._scheduled: dict[int, tuple[int, str]] = {}
        self.send_calls = 0
        self._ids = itertools.count(1)
        self.app = Starlette(routes=[
            Route("/cgi-bin/gettoken", self.gettoken, methods=["GET"]),
            Route("/cgi-bin/message/send", self.message_send, methods=["POST"]),
            Route("/cgi-bin/media/upload", self.media_upload, methods=["POST"]),
            Route("/cgi-bin/webhook/send", self.webhook_send, methods=["POST"]),
            Route("/cgi-bin/aibot/response", self.aibot_response, methods=["POST"]),
            Route("/_fake/state", self.state, methods=["GET"]),
            Route("/_fake/expire_tokens", self._remote_expire, methods=["POST"]),
            Route("/_fake/fail_next", self._remote_fail, methods=["POST"]),
        ])

    # ---- controls -----------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every token issued so far answers 42001 (expired) from now on."""
        self.tokens = dict.fromkeys(self.tokens, 0.0)

    def fail_next(self, errcode: int, errmsg: str = "injected") -> None:
        """The next ``message/send`` answers ``errcode`` (after the token check)."""
        self._failures.append((errcode, errmsg))

    def fail_send(self, nth: int, errcode: int, errmsg: str = "injected") -> None:
        """The ``nth`` ``message/send`` from now (1-based) answers ``errcode``."""
        self._scheduled[self.send_calls + nth] = (errcode, errmsg)

    # ---- endpoints ----------------------------------------------------------------------
    async def gettoken(self, request: Request) -> JSONResponse:
        """91039: ``access_token`` valid for ``expires_in`` seconds."""
        self.gettoken_calls += 1
        if request.query_params.get("corpid") != self.corp_id:
            return _err(40013, "invalid corpid")
        if request.query_params.get("corpsecret") != self.secret:
            return _err(40001, "invalid credential")
        token = f"tok{next(self._ids)}-" + "x" * 40
        self.tokens[token] = self.clock() + self.token_ttl
        return _err(0, "ok", access_token=token, expires_in=self.token_ttl)

    def _token_error(self, request: Request) -> JSONResponse | None:
        token = request.query_params.get("access_token")
        if not token:
            return _err(41001, "access_token missing")
        if token not in self.tokens:
            return _err(40014, "invalid access_token")
        if self.tokens[token] <= self.clock():
            return _err(42001, "access_token expired")
        return None

    async def message_send(self, request: Request) -> JSONResponse:
        """90236: application message; text/markdown content beyond 2048 bytes is truncated."""
        if (error := self._token_error(request)) is not None:
            return error
        self.send_calls += 1
        if self.send_calls in self._scheduled:
            return _err(*self._scheduled.pop(self.send_calls))
        if self._failures:
            return _err(*self._failures.pop(0))
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _err(47001, "data format error")
        if body.get("agentid") != self.agent_id:
            return _err(40056, "invalid agentid")
        if not (body.get("touser") or body.get("toparty") or body.get("totag")):
            return _err(81013, "user & party & tag all invalid")
        msgtype = body.get("msgtype")
        if msgtype not in {"text", "markdown", "image", "voice", "video", "file"} or \
                not isinstance(body.get(msgtype), dict):
            return _err(40008, "invalid message type")
        if msgtype in {"image", "voice", "video", "file"} and \
                body[msgtype].get("media_id") not in self.media:
            return _err(40007, "invalid media_id")
        msgid = f"msg{next(self._ids)}"
        self.sent.append({**body, "msgid": msgid})
        return _err(0, "ok", invaliduser="", msgid=msgid)

    async def media_upload(self, request: Request) -> JSONResponse:
        """Temporary media upload, multipart ``form-data`` with the field ``media``."""
        if (error := self._token_error(request)) is not None:
            return error
        kind = request.query_params.get("type")
        if kind not in {"image", "voice", "video", "file"}:
            return _err(40004, "invalid media type")
        head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + await request.body())
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "media":
                media_id = f"media{next(self._ids)}"
                self.media[media_id] = {"type": kind, "filename": part.get_filename(),
                                        "size": len(part.get_payload(decode=True) or b"")}
                return _err(0, "", type=kind, media_id=media_id,
                            created_at=str(int(self.clock())))
        return _err(41005, "media data missing")

    async def webhook_send(self, request: Request) -> JSONResponse:
        """99110: group robot; 20 messages per minute."""
        if request.query_params.get("key") not in self.robot_keys:
            return _err(93000, "invalid webhook url")
        now = self.clock()
        if sum(1 for m in self.robot_sent if now - m["at"] < 60) >= 20:
            return _err(45009, "api freq out of limit")
        self.robot_sent.append({**json.loads(await request.body()), "at": now})
        return _err(0, "ok")

    async def aibot_response(self, request: Request) -> JSONResponse:
        """101138: active reply to an AI bot message, once per response_code."""
        code = request.query_params.get("response_code", "")
        if not code or code in self.response_codes_used:
            return _err(40001, "invalid response_code")  # exact code not in our sources
        self.response_codes_used.add(code)
        self.aibot_responses.append({**json.loads(await request.body()), "code": code})
        return _err(0, "ok")

    async def state(self, request: Request) -> JSONResponse:
        """What was sent, for a test in another process."""
        return JSONResponse({"sent": self.sent, "robot_sent": self.robot_sent,
                             "aibot_responses": self.aibot_responses,
                             "gettoken_calls": self.gettoken_calls, "media": self.media})

    async def _remote_expire(self, request: Request) -> JSONResponse:
        self.expire_tokens()
        return _err(0, "ok")

    async def _remote_fail(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        self.fail_next(int(body["errcode"]), str(body.get("errmsg", "injected")))
        return _err(0, "ok")


def create_app() -> Starlette:
    """A fresh fake server (for ``uvicorn --factory``)."""
    return FakeWeCom().app


def main() -> None:
    """Serve the fake on a loopback port."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()
    uvicorn.run(FakeWeCom().app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
