"""A fake WeCom (企业微信) API for the chaos benchmark, recording into Redis.

Shaped as the official docs (and ``tests/adapters/wecom/fake_wecom.py``) describe what a
self-built app answering its members calls:

* ``GET /cgi-bin/gettoken?corpid&corpsecret`` (document 91039) -> ``{"errcode": 0,
  "errmsg": "ok", "access_token", "expires_in"}``; wrong corpid 40013, wrong secret 40001;
* ``POST /cgi-bin/message/send?access_token`` (document 90236) -> ``{"errcode": 0,
  "errmsg": "ok", "invaliduser": "", "msgid"}``; unknown token 40014, wrong agentid 40056,
  no recipient 81013. There is no idempotency key: with ``enable_duplicate_check`` 0 (what
  the adapter sends) every accepted call is a new message to ``touser``.

Latency, recording and the call log: :mod:`bench.chaos.fake_common` (prefix ``bench:wc``;
the call ``message/send`` is logged). Run as
``uvicorn --factory bench.chaos.fake_wecom:create_app``.
"""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from bench.chaos.fake_common import Recorder, create_fake, json_response

__all__ = ["AGENT_ID", "CORP_ID", "PREFIX", "SECRET", "create_app"]

CORP_ID = "wwchaosbench00001"
SECRET = "chaos-bench-wecom-secret"
AGENT_ID = 1000002
PREFIX = "bench:wc"
SEND = "message/send"
_TOKEN = "chaosbench-access-token-" + "x" * 40


def _error(errcode: int, errmsg: str) -> Response:
    return json_response({"errcode": errcode, "errmsg": errmsg})


async def _gettoken(rec: Recorder, request: Request, body: bytes) -> tuple[str, Response]:
    if request.query_params.get("corpid") != CORP_ID:
        return "gettoken", _error(40013, "invalid corpid")
    if request.query_params.get("corpsecret") != SECRET:
        return "gettoken", _error(40001, "invalid credential")
    return "gettoken", json_response({"errcode": 0, "errmsg": "ok", "access_token": _TOKEN,
                                      "expires_in": 7200})


async def _send(rec: Recorder, request: Request, body: bytes) -> tuple[str, Response]:
    if request.query_params.get("access_token") != _TOKEN:
        return SEND, _error(40014, "invalid access_token")
    try:
        params = json.loads(body)
    except ValueError:
        return SEND, _error(47001, "data format error")
    if params.get("agentid") != AGENT_ID:
        return SEND, _error(40056, "invalid agentid")
    touser = str(params.get("touser") or "")
    msgtype = params.get("msgtype")
    if not touser:
        return SEND, _error(81013, "user & party & tag all invalid")
    part = params.get(msgtype) if msgtype in ("text", "markdown") else None
    text = str(part.get("content") or "") if isinstance(part, dict) else ""
    if not text.strip():
        return SEND, _error(40008, "invalid message type")
    _created, msgid = await rec.create(touser, text, "msg")
    return SEND, json_response({"errcode": 0, "errmsg": "ok", "invaliduser": "",
                                "msgid": msgid})


def create_app() -> Starlette:
    """The fake, recording into ``BENCH_REDIS_URL``."""
    return create_fake(PREFIX, [("/cgi-bin/gettoken", "GET", _gettoken),
                                ("/cgi-bin/message/send", "POST", _send)],
                       frozenset({SEND}))
