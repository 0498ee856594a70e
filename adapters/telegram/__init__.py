"""Telegram Bot API channel: webhook (secret-token header) or long polling, HTML replies,
drafts and edits for streamed answers. See docs/channels/telegram.md."""

from .adapter import TelegramAdapter
from .models import TelegramConfig

__all__ = ["TelegramAdapter", "TelegramConfig"]
