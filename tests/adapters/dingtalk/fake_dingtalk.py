"""A fake DingTalk API, shaped as DingTalk's docs and official SDKs describe it.

Served in-process through ``httpx.ASGITransport`` in the unit tests, or on a loopback port:

    uvicorn --app-dir tests/adapters/dingtalk --factory fake_dingtalk:create_app --port 8765

(or ``python tests/adapters/dingtalk/fake_dingtalk.py --port 8765``). ``GET /_fake/calls``
returns the calls received so far (for a test talking to a separately served fake).

Routes (request / answer shapes from the docs):

* ``POST /v1.0/oauth2/accessToken`` ``{appKey, appSecret}`` -> ``{accessToken, expireIn}``
* ``POST /robot/sendBySession?session=...`` (session webhook) -> ``{errcode: 0, errmsg}``
* ``POST /v1.0/robot/oToMessages/batchSend`` -> ``{processQueryKey, invalidStaffIdList, ...}``
* ``POST /v1.0/robot/groupMessages/send`` -> ``{processQueryKey}``
* ``POST /v1.0/card/instances/createAndDeliver``, ``PUT /v1.0/card/streaming``,
  ``PUT /v1.0/card/instances`` -> ``{success: true, result}``
* ``POST /robot/send?access_token=&timestamp=&sign=`` (custom robot, 加签)
* ``POST /v1.0/gateway/connections/open`` -> ``{endpoint, ticket}`` (Stream mode)

OpenAPI calls need header ``x-acs-dingtalk-access-token`` with a live token, else HTTP 401
``{"code": "InvalidAuthentication", ...}``. ``throttle`` makes the next N calls answer as
DingTalk does when throttled.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REQUIRED = {
    "/v1.0/robot/oToMessages/batchSend": ("robotCode", "userIds", "msgKey", "msgParam"),
    "/v1.0/robot/groupMessages/send": ("robotCode", "openConversationId", "msgKey", "msgParam"),
    "/v1.0/card/instances/createAndDeliver": ("cardTemplateId", "outTrackId", "openSpaceId"),
    "/v1.0/card/streaming": ("outTrackId", "guid", "key", "content", "isFull", "isFinalize",
                             "isError"),
    "/v1.0/card/instances": ("outTrackId", "cardData"),
}


@dataclass
class FakeDingTalk:
    """State of the fake: credentials, issued tokens, calls received, failure switches."""

    app_key: str = "dingappkey"
    app_secret: str = "app-secret"
    robot_secret: str = "SECrobot"
    ws_endpoint: str = "ws://127.0.0.1:1/connect"
    calls: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    throttle: int = 0  # answer the next N calls as throttled
    fail_calls: dict[int, int] = field(default_factory=dict)  # call number (1-based) -> status
    token_fetches: int = 0

    def revoke_tokens(self) -> None:
        """Make every issued token invalid (as DingTalk does when a token is reset)."""
        self.tokens.clear()

    def paths(self) -> list[str]:
        """The paths called so far, in order."""
        return [c["path"] for c in self.calls]

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies received on ``path``."""
        return [c["body"] for c in self.calls if c["path"] == path]

    # handlers ----------------------------------------------------------------------------
    async def _record(self, request: Request) -> Any:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        self.calls.append({"method": request.method, "path": request.url.path,
                           "query": dict(request.query_params), "body": body,
                           "token": request.headers.get("x-acs-dingtalk-access-token")})
        return body

    def _injected_failure(self) -> JSONResponse | None:
        """The answer for a call listed in ``fail_calls`` (as the new OpenAPI answers)."""
        status = self.fail_calls.get(len(self.calls))
        if status is None:
            return None
        return JSONResponse({"code": "ServiceUnavailable" if status >= 500 else "Invalid",
                             "message": "injected failure", "requestid": "fake"},
                            status_code=status)

    def _throttled(self, old_gateway: bool) -> JSONResponse | None:
        if self.throttle <= 0:
            return None
        self.throttle -= 1
        if old_gateway:
            return JSONResponse({"errcode": 130101,
                                 "errmsg": "send too fast, exceed 20 times per minute"})
        return JSONResponse({"code": "Forbidden.AccessDenied.QpsLimitForApi",
                             "message": "QPS limit exceeded", "requestid": "fake"},
                            status_code=429)

    async def access_token(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        if (not isinstance(body, dict) or body.get("appKey") != self.app_key
                or body.get("appSecret") != self.app_secret):
            return JSONResponse({"code": "invalidClientIdOrSecret",
                                 "message": "无效的clientId或者clientSecret"}, status_code=400)
        token = uuid.uuid4().hex
        self.tokens.add(token)
        self.token_fetches += 1
        return JSONResponse({"accessToken": token, "expireIn": 7200})

    async def openapi(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        if request.headers.get("x-acs-dingtalk-access-token") not in self.tokens:
            return JSONResponse({"code": "InvalidAuthentication", "message": "不合法的access_token",
                                 "requestid": "fake"}, status_code=401)
        if (throttled := self._throttled(old_gateway=False)) is not None:
            return throttled
        if (failed := self._injected_failure()) is not None:
            return failed
        path = request.url.path
        missing = [k for k in REQUIRED[path] if not isinstance(body, dict) or k not in body]
        if missing or (path.startswith("/v1.0/robot/") and not isinstance(body["msgParam"], str)):
            return JSONResponse({"code": "MissingParameter", "message": f"missing {missing}"},
                                status_code=400)
        if path == "/v1.0/robot/oToMessages/batchSend":
            return JSONResponse({"processQueryKey": uuid.uuid4().hex, "invalidStaffIdList": [],
                                 "flowControlledStaffIdList": []})
        if path == "/v1.0/robot/groupMessages/send":
            return JSONResponse({"processQueryKey": uuid.uuid4().hex})
        return JSONResponse({"success": True, "result": True})

    async def session_webhook(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        if (throttled := self._throttled(old_gateway=True)) is not None:
            return throttled
        if (failed := self._injected_failure()) is not None:
            return failed
        if not isinstance(body, dict) or body.get("msgtype") not in ("text", "markdown"):
            return JSONResponse({"errcode": 400105, "errmsg": "不支持的消息类型"})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def custom_robot(self, request: Request) -> JSONResponse:
        await self._record(request)
        if (throttled := self._throttled(old_gateway=True)) is not None:
            return throttled
        ts = request.query_params.get("timestamp", "")
        mac = hmac.new(self.robot_secret.encode(), f"{ts}\n{self.robot_secret}".encode(),
                       hashlib.sha256).digest()
        # Starlette has already URL-decoded the query parameter.
        if (not ts.isdigit() or abs(time.time() - int(ts) / 1000) > 3600
                or request.query_params.get("sign") != base64.b64encode(mac).decode()):
            return JSONResponse({"errcode": 310000, "errmsg": "sign not match"})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def open_connection(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        if (not isinstance(body, dict) or body.get("clientId") != self.app_key
                or body.get("clientSecret") != self.app_secret):
            return JSONResponse({"code": "invalidClientIdOrSecret", "message": "bad"},
                                status_code=400)
        return JSONResponse({"endpoint": self.ws_endpoint, "ticket": uuid.uuid4().hex})

    async def list_calls(self, request: Request) -> JSONResponse:
        return JSONResponse({"calls": self.calls})

    def asgi(self) -> Starlette:
        """The ASGI app for this fake's state."""
        openapi_routes = [Route(path, self.openapi, methods=["POST", "PUT"]) for path in REQUIRED]
        return Starlette(routes=[
            Route("/v1.0/oauth2/accessToken", self.access_token, methods=["POST"]),
            Route("/robot/sendBySession", self.session_webhook, methods=["POST"]),
            Route("/robot/send", self.custom_robot, methods=["POST"]),
            Route("/v1.0/gateway/connections/open", self.open_connection, methods=["POST"]),
            Route("/_fake/calls", self.list_calls, methods=["GET"]),
            *openapi_routes,
        ])


def create_app() -> Starlette:
    """uvicorn ``--factory`` entry: a fresh fake with default credentials."""
    return FakeDingTalk().asgi()


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    uvicorn.run(create_app(), host="127.0.0.1", port=parser.parse_args().port)
