"""Pydantic models: the bot's WeCom settings and the callback payloads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from .crypto import valid_encoding_aes_key

__all__ = [
    "AiBotCallback",
    "AppCallback",
    "StreamState",
    "WeComConfig",
]

#: fields each mode needs (the rest may be left out).
REQUIRED_BY_MODE: dict[str, tuple[str, ...]] = {
    "app": ("corp_id", "agent_id", "secret", "token", "encoding_aes_key"),
    "aibot": ("aibot_token", "aibot_encoding_aes_key"),
}


class WeComConfig(BaseModel):
    """The ``[bots.<id>]`` keys of a WeCom bot (see docs/channels/wecom.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["app", "aibot"] = "app"
    corp_id: str | None = Field(None, min_length=1, description="企业ID (CorpID)")
    agent_id: int | None = Field(None, description="the self-built app's AgentId")
    secret: SecretStr | None = Field(None, description="the app's Secret (gettoken)")
    token: SecretStr | None = Field(None, description="callback Token (signatures)")
    encoding_aes_key: SecretStr | None = Field(None, description="callback EncodingAESKey")
    api_base: str = Field("https://qyapi.weixin.qq.com", pattern=r"^https?://[^/?#]+$")
    aibot_token: SecretStr | None = None
    aibot_encoding_aes_key: SecretStr | None = None
    replay_window: int = Field(300, ge=10, le=3600, description="seconds a timestamp is fresh")
    nonce_cache: bool = Field(False, description="reject a repeated nonce within the window")
    kf: bool = Field(False, description="mode app: also serve WeChat Customer Service (微信客服)")
    member_limits: tuple[tuple[int, float], ...] = Field(
        ((30, 60.0), (1000, 3600.0)), min_length=1,
        description="(limit, seconds) windows of messages to one member (WeCom: 30/min, 1000/h)")
    rate_limit_wait: float = Field(30.0, ge=0, le=3600,
                                   description="seconds a send may wait for a member's window")

    @field_validator("encoding_aes_key", "aibot_encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not valid_encoding_aes_key(value.get_secret_value()):
            raise ValueError("43 characters of [A-Za-z0-9] (the console's EncodingAESKey)")
        return value

    @field_validator("member_limits")
    @classmethod
    def _windows(cls, value: tuple[tuple[int, float], ...]) -> tuple[tuple[int, float], ...]:
        if any(limit < 1 or seconds <= 0 for limit, seconds in value):
            raise ValueError("[limit >= 1, seconds > 0] pairs")
        return value

    def missing(self) -> list[str]:
        """The fields this ``mode`` needs that are not set."""
        return [name for name in REQUIRED_BY_MODE[self.mode] if getattr(self, name) is None]


class AppCallback(BaseModel):
    """A decrypted self-built-app callback (XML children, names as WeCom spells them)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    to_user: str = Field(alias="ToUserName")
    from_user: str = Field(alias="FromUserName", min_length=1)
    create_time: int = Field(alias="CreateTime")
    msg_type: str = Field(alias="MsgType", min_length=1)
    msg_id: str | None = Field(None, alias="MsgId")
    agent_id: str | None = Field(None, alias="AgentID")
    event: str | None = Field(None, alias="Event")
    event_key: str | None = Field(None, alias="EventKey")
    content: str | None = Field(None, alias="Content")

    def field(self, name: str) -> str | None:
        """Another XML child by its WeCom name (``PicUrl``, ``MediaId``, ...)."""
        value = (self.model_extra or {}).get(name)
        return None if value is None else str(value)


class AiBotFrom(BaseModel):
    """The sender of an AI bot callback."""

    model_config = ConfigDict(extra="allow", frozen=True)

    userid: str = Field(min_length=1)


class AiBotCallback(BaseModel):
    """A decrypted AI bot (智能机器人) JSON callback."""

    model_config = ConfigDict(extra="allow", frozen=True)

    msgid: str = Field(min_length=1)
    aibotid: str = ""
    chatid: str | None = None
    chattype: str = "single"
    sender: AiBotFrom = Field(alias="from")
    response_url: str | None = None
    msgtype: str = Field(min_length=1)
    create_time: int | None = None

    def part(self, name: str) -> dict[str, Any]:
        """The body object named by ``name`` (``text``, ``image``, ``stream``...) or {}."""
        value = (self.model_extra or {}).get(name)
        return value if isinstance(value, dict) else {}


class StreamState(BaseModel):
    """What the worker has produced so far for one AI bot stream (stored as JSON in Redis)."""

    model_config = ConfigDict(frozen=True)

    content: str = ""
    finish: bool = False
