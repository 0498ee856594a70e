"""Telegram errors: subclasses of the core tree, carrying the Bot API's fields.

The Bot API says its ``description`` texts "are subject to change", so retry decisions branch
on ``error_code`` and ``parameters`` (``retry_after``, ``migrate_to_chat_id``), never on text.
"""

from __future__ import annotations

from botcore.errors import ChannelApiError, ChannelAuthError, ChannelError

__all__ = ["TelegramApiError", "TelegramAuthError", "TelegramChatMigrated", "TelegramError"]

CHANNEL = "telegram"


class TelegramError(ChannelError):
    """Anything the Telegram adapter reports that is not an API answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, channel=CHANNEL)


class TelegramApiError(ChannelApiError):
    """The Bot API answered ``{"ok": false, "error_code": ..., "description": ...}``.

    Args:
        errcode: the ``error_code`` (an HTTP status: 400, 403, ...).
        errmsg: the ``description`` (for humans; never branch on it).
        method: the Bot API method that failed.
    """

    def __init__(self, errcode: int, errmsg: str, *, method: str = "") -> None:
        self.method = method
        super().__init__(errcode, f"{method}: {errmsg}" if method else errmsg, channel=CHANNEL)


class TelegramChatMigrated(TelegramApiError):
    """The group became a supergroup: send again to ``new_chat_id`` (once)."""

    def __init__(self, new_chat_id: int, *, method: str = "") -> None:
        self.new_chat_id = new_chat_id
        super().__init__(400, f"chat migrated to {new_chat_id}", method=method)


class TelegramAuthError(ChannelAuthError):
    """The bot token was refused (401/404). Telegram tokens cannot be refreshed: this is a
    configuration error (a revoked or mistyped ``token``), reported as such."""

    def __init__(self, errcode: int, *, bot_id: str = "", method: str = "") -> None:
        key = f"bots.{bot_id}.token" if bot_id else "the bot's token"
        super().__init__(
            errcode,
            f"{method}: the Bot API refused the bot token; check {key} "
            "(revoked or mistyped; ask @BotFather for the current one)",
            channel=CHANNEL,
        )
