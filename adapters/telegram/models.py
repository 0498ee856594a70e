"""Pydantic models of the Bot API payloads the adapter uses, and of its settings.

Only the fields botcore reads are modelled. Inbound models ignore unknown fields (the Bot API
adds fields in every release); outbound request models forbid them, so a typo fails in tests
instead of being silently dropped by Telegram. Reference: https://core.telegram.org/bots/api
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = [
    "ApiResponse",
    "CallbackQuery",
    "Chat",
    "ChatMemberUpdated",
    "Document",
    "EditMessageText",
    "InlineKeyboardButton",
    "InlineKeyboardMarkup",
    "Message",
    "MessageEntity",
    "PhotoSize",
    "ReplyParameters",
    "ResponseParameters",
    "SendMessage",
    "SendMessageDraft",
    "TelegramConfig",
    "Update",
    "User",
    "Voice",
]

SECRET_TOKEN_PATTERN = r"^[A-Za-z0-9_-]{1,256}$"
DEFAULT_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")

_IN = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
_OUT = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TelegramConfig(BaseModel):
    """``[bots.<id>]`` keys of a Telegram bot (see docs/channels/telegram.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr = Field(description="bot token from @BotFather, '<bot id>:<secret>'")
    bot_username: str = Field(pattern=r"^@?[A-Za-z][A-Za-z0-9_]{3,31}$",
                              description="the bot's @username (mentions, /cmd@bot)")
    mode: Literal["webhook", "polling"] = "webhook"
    secret_token: SecretStr | None = Field(
        None, description="X-Telegram-Bot-Api-Secret-Token; required in webhook mode")
    webhook_url: str | None = Field(
        None, pattern=r"^https://", description="public HTTPS URL; setWebhook at startup")
    api_base: str = Field("https://api.telegram.org", pattern=r"^https?://")
    allowed_updates: tuple[str, ...] = DEFAULT_UPDATES
    poll_timeout: int = Field(30, ge=0, le=50, description="getUpdates long-poll seconds")

    @field_validator("bot_username")
    @classmethod
    def _strip_at(cls, value: str) -> str:
        return value.removeprefix("@")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        bot_id, _, secret = value.get_secret_value().partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("a BotFather token, '<digits>:<secret>'")
        return value

    @field_validator("secret_token")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(SECRET_TOKEN_PATTERN, value.get_secret_value()):
            raise ValueError("1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> TelegramConfig:
        if self.mode == "webhook" and self.secret_token is None:
            raise ValueError("secret_token is required in webhook mode")
        return self

    @property
    def bot_user_id(self) -> int:
        """The bot's own user id: the digits before ':' in the token."""
        return int(self.token.get_secret_value().partition(":")[0])


# --- inbound ------------------------------------------------------------------------------


class User(BaseModel):
    """https://core.telegram.org/bots/api#user"""

    model_config = _IN
    id: int
    is_bot: bool = False
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None


class Chat(BaseModel):
    """https://core.telegram.org/bots/api#chat"""

    model_config = _IN
    id: int
    type: Literal["private", "group", "supergroup", "channel"]
    title: str | None = None
    username: str | None = None
    is_forum: bool = False


class MessageEntity(BaseModel):
    """Offsets and lengths count UTF-16 code units."""

    model_config = _IN
    type: str
    offset: int
    length: int
    url: str | None = None
    user: User | None = None


class PhotoSize(BaseModel):
    """One size of a photo."""

    model_config = _IN
    file_id: str
    file_unique_id: str = ""
    width: int = 0
    height: int = 0
    file_size: int | None = None


class Document(BaseModel):
    """A general file (also used for ``video``, ``audio``)."""

    model_config = _IN
    file_id: str
    file_unique_id: str = ""
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None


class Voice(BaseModel):
    """A voice note."""

    model_config = _IN
    file_id: str
    file_unique_id: str = ""
    duration: int = 0
    mime_type: str | None = None


class Message(BaseModel):
    """https://core.telegram.org/bots/api#message (the fields botcore reads)."""

    model_config = _IN
    message_id: int
    date: int
    chat: Chat
    from_: User | None = Field(None, alias="from")
    sender_chat: Chat | None = None
    message_thread_id: int | None = None
    is_topic_message: bool = False
    edit_date: int | None = None
    text: str | None = None
    entities: tuple[MessageEntity, ...] = ()
    caption: str | None = None
    caption_entities: tuple[MessageEntity, ...] = ()
    photo: tuple[PhotoSize, ...] = ()
    document: Document | None = None
    video: Document | None = None
    audio: Document | None = None
    voice: Voice | None = None
    sticker: dict[str, Any] | None = None
    reply_to_message: Message | None = None
    new_chat_members: tuple[User, ...] = ()
    left_chat_member: User | None = None


class CallbackQuery(BaseModel):
    """A press on an inline keyboard button."""

    model_config = _IN
    id: str
    from_: User = Field(alias="from")
    message: Message | None = None
    inline_message_id: str | None = None
    chat_instance: str = ""
    data: str | None = None


class ChatMemberUpdated(BaseModel):
    """The bot's own membership changed (added, removed, promoted)."""

    model_config = _IN
    chat: Chat
    from_: User = Field(alias="from")
    date: int
    old_chat_member: dict[str, Any]
    new_chat_member: dict[str, Any]


class Update(BaseModel):
    """https://core.telegram.org/bots/api#update: ``update_id`` plus at most one payload."""

    model_config = _IN
    update_id: int
    message: Message | None = None
    edited_message: Message | None = None
    callback_query: CallbackQuery | None = None
    my_chat_member: ChatMemberUpdated | None = None


# --- outbound -----------------------------------------------------------------------------


class ResponseParameters(BaseModel):
    """Why a request failed and how to recover."""

    model_config = _IN
    retry_after: float | None = None
    migrate_to_chat_id: int | None = None


class ApiResponse(BaseModel):
    """The envelope of every Bot API answer."""

    model_config = _IN
    ok: bool
    result: Any = None
    error_code: int | None = None
    description: str = ""
    parameters: ResponseParameters | None = None


class InlineKeyboardButton(BaseModel):
    """A button that sends ``callback_data`` (1-64 bytes) back, or opens ``url``."""

    model_config = _OUT
    text: str
    callback_data: str | None = None
    url: str | None = None


class InlineKeyboardMarkup(BaseModel):
    """Rows of inline buttons under a message."""

    model_config = _OUT
    inline_keyboard: tuple[tuple[InlineKeyboardButton, ...], ...]


class ReplyParameters(BaseModel):
    """Quote the message being answered."""

    model_config = _OUT
    message_id: int
    allow_sending_without_reply: bool = True


class SendMessage(BaseModel):
    """``sendMessage`` (HTML parse mode)."""

    model_config = _OUT
    chat_id: int
    text: str
    parse_mode: Literal["HTML"] | None = "HTML"
    message_thread_id: int | None = None
    reply_parameters: ReplyParameters | None = None
    reply_markup: InlineKeyboardMarkup | None = None
    link_preview_options: dict[str, Any] | None = None


class EditMessageText(BaseModel):
    """``editMessageText`` of a message the bot sent."""

    model_config = _OUT
    chat_id: int
    message_id: int
    text: str
    parse_mode: Literal["HTML"] | None = "HTML"
    reply_markup: InlineKeyboardMarkup | None = None


class SendMessageDraft(BaseModel):
    """``sendMessageDraft`` (Bot API 9.3+): an animated preview in a private chat."""

    model_config = _OUT
    chat_id: int
    draft_id: int = Field(gt=0)
    text: str
    parse_mode: Literal["HTML"] | None = "HTML"
    message_thread_id: int | None = None
