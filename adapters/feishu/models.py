"""Pydantic models: the bot's Feishu settings and the event envelope (schema 2.0 and 1.0)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["EventEnvelope", "EventHeader", "FeishuConfig"]

FEISHU_API = "https://open.feishu.cn"
LARK_API = "https://open.larksuite.com"


class FeishuConfig(BaseModel):
    """``[bots.<id>]`` keys of a Feishu / Lark bot.

    Attributes:
        app_id: the app's App ID (``cli_...``).
        app_secret: the App Secret.
        verification_token: Verification Token (Events and callbacks > Encryption strategy).
        encrypt_key: Encrypt Key; when set, bodies are AES-encrypted and signed.
        mode: ``webhook`` (HTTP callbacks) or ``long_connection`` (SDK WebSocket).
        api_base: ``https://open.feishu.cn`` (Feishu) or ``https://open.larksuite.com`` (Lark).
        bot_open_id: the bot's own open_id, to tell an @bot from other mentions.
        bot_name: the bot's display name, used when ``bot_open_id`` is not set.
        replay_window: seconds a signed request's timestamp may differ from the clock.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    app_id: str = Field(min_length=1)
    app_secret: SecretStr
    verification_token: SecretStr | None = None
    encrypt_key: SecretStr | None = None
    mode: Literal["webhook", "long_connection"] = "webhook"
    api_base: str = FEISHU_API
    bot_open_id: str | None = None
    bot_name: str | None = None
    replay_window: int = Field(300, ge=10, le=3600)


class EventHeader(BaseModel):
    """``header`` of a schema 2.0 event."""

    model_config = ConfigDict(extra="ignore")

    event_id: str
    event_type: str
    token: str = ""
    create_time: str = ""
    tenant_key: str = ""
    app_id: str = ""


class EventEnvelope(BaseModel):
    """A decrypted callback body: schema 2.0 (``schema`` + ``header``) or 1.0 (``uuid``).

    ``url_verification`` uses the 1.0 top-level fields (``type``, ``token``, ``challenge``).
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    schema_: str | None = Field(None, alias="schema")
    header: EventHeader | None = None
    event: dict[str, Any] = Field(default_factory=dict)
    uuid: str | None = None
    token: str | None = None
    type: str | None = None
    challenge: str | None = None
    ts: str | None = None

    @property
    def is_challenge(self) -> bool:
        """True for the ``url_verification`` handshake."""
        return self.type == "url_verification"

    @property
    def event_type(self) -> str:
        """``header.event_type`` (2.0) or ``event.type`` (1.0)."""
        if self.header is not None:
            return self.header.event_type
        return str(self.event.get("type") or "")

    @property
    def event_token(self) -> str:
        """The verification token carried by the body."""
        if self.header is not None:
            return self.header.token
        return self.token or ""
