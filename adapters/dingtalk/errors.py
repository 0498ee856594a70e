"""DingTalk errors, and the one place that maps DingTalk's error answers onto them.

DingTalk has two API generations with two error shapes:

* the new OpenAPI (``api.dingtalk.com/v1.0/...``) answers a non-2xx HTTP status with
  ``{"code": "InvalidAuthentication", "message": "...", "requestid": "..."}``;
* the old gateway (session webhooks, custom robots, ``oapi.dingtalk.com``) answers HTTP 200
  with ``{"errcode": 130101, "errmsg": "send too fast ..."}``.

Retry decisions read the exception type (``ChannelRateLimited``, ``ChannelAuthError``), never
the message text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botcore.errors import (
    ChannelApiError,
    ChannelAuthError,
    ChannelError,
    ChannelRateLimited,
    ChannelUnavailable,
)

__all__ = [
    "DingTalkApiError",
    "DingTalkAuthError",
    "DingTalkError",
    "DingTalkRateLimited",
    "api_error",
]

CHANNEL = "dingtalk"

#: Old-gateway codes meaning "throttled", with the wait they imply (seconds).
#: 130101: custom/session robot over 20 msgs/min (blocked 10 min); 90002/90018/90019: QPS
#: limits (per API, per app, ISV 40/s); 90006: per-minute limit; 1111: the per-IP "punish"
#: page (5 min ban).
_THROTTLED_ERRCODES: dict[int, float] = {
    130101: 600.0, 90002: 1.0, 90006: 60.0, 90018: 1.0, 90019: 1.0, 1111: 300.0,
}
#: Old-gateway codes meaning "the access token is invalid or expired".
_AUTH_ERRCODES = frozenset({40014, 42001, 40001, 88})
#: New-OpenAPI ``code`` fragments meaning throttled / bad token.
_THROTTLED_CODE_PARTS = ("QpsLimit", "Throttling", "FlowControl", "TooManyRequests")
_AUTH_CODES = frozenset({"InvalidAuthentication", "InvalidAccessToken", "Unauthorized"})


class DingTalkError(ChannelError):
    """Anything the DingTalk adapter reports."""

    def __init__(self, message: str) -> None:
        super().__init__(message, channel=CHANNEL)


class DingTalkApiError(ChannelApiError):
    """DingTalk's API answered with an error (``errcode`` is the code, as a str or int)."""

    def __init__(self, errcode: int | str, errmsg: str) -> None:
        super().__init__(errcode, errmsg, channel=CHANNEL)


class DingTalkRateLimited(ChannelRateLimited):
    """DingTalk throttled us; wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float, errcode: int | str = 429, errmsg: str = "") -> None:
        super().__init__(retry_after, channel=CHANNEL, errcode=errcode, errmsg=errmsg)


class DingTalkAuthError(ChannelAuthError):
    """The access token was refused: refresh it once and retry."""

    def __init__(self, errcode: int | str, errmsg: str) -> None:
        super().__init__(errcode, errmsg, channel=CHANNEL)


def _retry_after(headers: Mapping[str, str], default: float) -> float:
    try:
        return max(0.0, float(headers.get("retry-after", default)))
    except ValueError:
        return default


def api_error(status: int, body: Any, headers: Mapping[str, str] | None = None
              ) -> ChannelError | None:
    """Classify one DingTalk answer. Returns None when it is a success.

    Args:
        status: the HTTP status.
        body: the decoded JSON body (anything; a non-dict body is treated as opaque).
        headers: response headers (lower-case names), for ``Retry-After``.

    Returns:
        ``DingTalkRateLimited``, ``DingTalkAuthError``, ``ChannelUnavailable`` (5xx),
        ``DingTalkApiError`` (other errors), or None.
    """
    headers = headers or {}
    data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    if status >= 500:
        return ChannelUnavailable(f"HTTP {status}", channel=CHANNEL)
    errcode = data.get("errcode")
    if isinstance(errcode, int) and errcode != 0:
        return _errcode_error(errcode, str(data.get("errmsg", "")), headers)
    if data.get("status") == 1111:  # the per-IP ban page (sometimes served with 200)
        return DingTalkRateLimited(300.0, 1111, "per-IP flow control")
    if status < 300:
        return None
    code = str(data.get("code") or status)
    message = str(data.get("message") or data.get("errmsg") or f"HTTP {status}")
    if status == 429 or any(part in code for part in _THROTTLED_CODE_PARTS):
        return DingTalkRateLimited(_retry_after(headers, 1.0), code, message)
    if status == 401 or code in _AUTH_CODES:
        return DingTalkAuthError(code, message)
    return DingTalkApiError(code, message)


def _errcode_error(errcode: int, errmsg: str, headers: Mapping[str, str]) -> ChannelError:
    if errcode in _THROTTLED_ERRCODES:
        return DingTalkRateLimited(_retry_after(headers, _THROTTLED_ERRCODES[errcode]),
                                   errcode, errmsg)
    if errcode in _AUTH_ERRCODES:
        return DingTalkAuthError(errcode, errmsg)
    return DingTalkApiError(errcode, errmsg)
