"""Feishu / Lark errors: subclasses of the core tree (botcore.errors)."""

from __future__ import annotations

from botcore.errors import ChannelApiError, ChannelAuthError, ChannelError

__all__ = ["FeishuApiError", "FeishuAuthError", "FeishuError"]

CHANNEL = "feishu"


class FeishuError(ChannelError):
    """Anything the Feishu adapter reports that is not an API answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, channel=CHANNEL)


class FeishuApiError(ChannelApiError):
    """The Open Platform answered with a non-zero ``code``.

    Args:
        errcode: Feishu's ``code`` (or the HTTP status when the body carried none).
        errmsg: Feishu's ``msg``.
    """

    def __init__(self, errcode: int | str, errmsg: str) -> None:
        super().__init__(errcode, errmsg, channel=CHANNEL)


class FeishuAuthError(FeishuApiError, ChannelAuthError):
    """The tenant_access_token is missing, expired or invalid (99991661/99991663/99991668)."""
