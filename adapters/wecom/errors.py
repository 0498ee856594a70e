"""WeCom errors: subclasses of the core tree, and the one errcode → error mapping.

::

    ChannelError
    ├── WeComError                      adapter misuse (no recipient, unusable attachment)
    │   └── WeComDeliveryUnknown        message/send was written but no answer came back
    └── ChannelApiError
        ├── WeComApiError(errcode, errmsg)  any other non-zero errcode
        ├── WeComAuthError              42001 expired / 40014 invalid access_token
        └── WeComRateLimited            45009 frequency limit, 45033 concurrency limit

``-1`` (system busy) and HTTP 5xx / network errors raise
:class:`~botcore.errors.ChannelUnavailable`.
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
    "CHANNEL",
    "WeComApiError",
    "WeComAuthError",
    "WeComDeliveryUnknown",
    "WeComError",
    "WeComRateLimited",
    "raise_for_errcode",
]

CHANNEL = "wecom"

#: errcodes that mean "this access_token is dead": invalidate, fetch a new one, retry once.
AUTH_ERRCODES = frozenset({42001, 40014})
#: errcode → seconds to wait. 45009: per-minute API limit; 45033: too many concurrent calls.
RATE_ERRCODES: Mapping[int, float] = {45009: 60.0, 45033: 1.0}
SYSTEM_BUSY = -1


class WeComError(ChannelError):
    """The WeCom adapter was used in a way it cannot serve (no recipient, bad attachment)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, channel=CHANNEL)


class WeComDeliveryUnknown(WeComError):
    """A non-idempotent call (``message/send``) reached WeCom but its answer was lost (read
    timeout, connection reset): WeCom may have delivered it. Never retried, since
    ``enable_duplicate_check`` is off and a retry could show the message twice."""


class WeComApiError(ChannelApiError):
    """WeCom answered with a non-zero ``errcode``."""

    def __init__(self, errcode: int | str, errmsg: str) -> None:
        super().__init__(errcode, errmsg, channel=CHANNEL)


class WeComAuthError(WeComApiError, ChannelAuthError):
    """The access token expired (42001) or is invalid (40014)."""


class WeComRateLimited(ChannelRateLimited):
    """WeCom throttled the call; wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float, errcode: int, errmsg: str) -> None:
        super().__init__(retry_after, channel=CHANNEL, errcode=errcode, errmsg=errmsg)


def raise_for_errcode(payload: Mapping[str, Any]) -> None:
    """Raise the typed error for a WeCom API answer; return when ``errcode`` is 0.

    Args:
        payload: the decoded JSON answer (``{"errcode": ..., "errmsg": ...}``).

    Raises:
        WeComAuthError: 42001 or 40014.
        WeComRateLimited: 45009 or 45033.
        ChannelUnavailable: -1 (system busy).
        WeComApiError: any other non-zero errcode, or no errcode at all.
    """
    raw = payload.get("errcode", 0)
    try:
        errcode = int(raw)
    except (TypeError, ValueError):
        raise WeComApiError(str(raw), "errcode is not an integer") from None
    errmsg = str(payload.get("errmsg", ""))[:200]
    if errcode == 0:
        return
    if errcode in AUTH_ERRCODES:
        raise WeComAuthError(errcode, errmsg)
    if errcode in RATE_ERRCODES:
        raise WeComRateLimited(RATE_ERRCODES[errcode], errcode, errmsg)
    if errcode == SYSTEM_BUSY:
        raise ChannelUnavailable(f"system busy (-1): {errmsg}", channel=CHANNEL)
    raise WeComApiError(errcode, errmsg)
