"""Settings: a TOML file plus ``BOTCORE_*`` environment variables, validated at start-up.

Sources, strongest first: keyword arguments, environment (``BOTCORE_REDIS_URL``,
``BOTCORE_BOTS__SUPPORT__SECRET``: nested names joined by ``__``), the TOML file
(``botcore.toml`` in the working directory, or the path in ``BOTCORE_CONFIG``).

Example ``botcore.toml``::

    redis_url = "redis://localhost:6379/0"     # leave out: embedded Redis under data_dir

    [bots.support]
    channel = "web"
    app = "examples.support_bot:app"

A wrong or missing value raises :class:`~botcore.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from botcore.errors import ConfigError
from botcore.kb.settings import KBSettings

__all__ = [
    "BotConfig",
    "HandoffSettings",
    "IngressSettings",
    "LLMSettings",
    "SessionSettings",
    "Settings",
    "WorkerSettings",
    "load_settings",
]

M = TypeVar("M", bound=BaseModel)
_APP_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_SECRET_KEY = re.compile(r"secret|key|token|passw|sign|aes|credential|auth|url",
                         re.IGNORECASE)
DEFAULT_CONFIG = "botcore.toml"
_MASK = "**********"


class IngressSettings(BaseModel):
    """Durable ingress: dedupe window, leases, retries, bursts."""

    model_config = ConfigDict(extra="forbid")

    dedupe_ttl: int = Field(86_400, ge=60, description="seconds a delivery id is remembered")
    lease_ttl: float = Field(30.0, gt=0.5, description="seconds a drain owns a conversation")
    schedule_ttl: float = Field(15.0, gt=0.5, description="seconds a queued drain is trusted")
    sweep_interval: float = Field(1.0, gt=0.0, description="seconds between sweeper passes")
    max_attempts: int = Field(3, ge=1, description="failed turns (the handler raised or "
                              "timed out) before the message is dead-lettered")
    max_crashes: int = Field(8, ge=1, description="turns cut short by a dying worker before "
                             "the message is dead-lettered (a message that kills workers)")
    merge_window: float = Field(0.0, ge=0.0, description="debounce: seconds of quiet after "
                                "the sender's latest line before the turn starts (0: off)")
    max_merge: int = Field(5, ge=1, description="messages merged into one turn at most")
    max_body_bytes: int = Field(1_048_576, ge=1024)
    apology: str = "抱歉，处理您的消息时出了点问题，请稍后再试。(Sorry, something went wrong.)"


class WorkerSettings(BaseModel):
    """The Celery worker."""

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(2, ge=1, description="pool processes")
    drains_per_process: int = Field(16, ge=1, description="conversations one process "
                                    "drains at once (turns mostly wait for the model)")
    queue: str = "botcore"
    task_time_limit: int = Field(120, ge=5, description="seconds one turn may take before "
                                 "it counts as failed (retried, then dead-lettered)")
    shutdown_grace: float = Field(60.0, ge=0, description="seconds a stopping worker "
                                  "(SIGTERM, e.g. a rolling deploy) gives its running turns to "
                                  "finish; keep the orchestrator's kill timeout above it "
                                  "(Kubernetes terminationGracePeriodSeconds, compose "
                                  "stop_grace_period)")


class SessionSettings(BaseModel):
    """Conversation memory in Redis."""

    model_config = ConfigDict(extra="forbid")

    ttl: int = Field(7 * 86_400, ge=60, description="seconds a session lives after a write")
    max_turns: int = Field(20, ge=1, description="history entries kept")
    max_tokens: int = Field(4_000, ge=100, description="history token budget")


class LLMSettings(BaseModel):
    """The chat model: any OpenAI-compatible endpoint. Leave ``model`` empty for none."""

    model_config = ConfigDict(extra="forbid")

    provider: str = "openai"
    model: str = ""
    base_url: str | None = None
    api_key: SecretStr | None = None
    temperature: float = 0.3
    #: per attempt; attempts x timeout must stay under the turn's model budget (3/4 of
    #: worker.task_time_limit) so a fallback can still answer: checked at worker start
    timeout: float = 20.0
    max_retries: int = 1
    fallbacks: list[LLMSettings] = Field(
        default_factory=list,
        description="[[llm.fallbacks]] tables, tried in order when the model fails")


class HandoffSettings(BaseModel):
    """Human handoff: the agents' API (``/handoff/...``) and the agents' notifications.

    ``notify`` lists webhooks told when a handoff opens (``[[handoff.notify]]`` tables, see
    :mod:`botcore.handoff_notify`).
    """

    class NotifyTarget(BaseModel):
        """One ``[[handoff.notify]]`` webhook: ``url``, ``format``, optional ``secret``."""

        model_config = ConfigDict(extra="forbid", frozen=True)

        url: SecretStr = Field(description="the webhook URL (it holds the robot's key)")
        format: str = Field(description="wecom_robot | feishu_bot | dingtalk_robot | json")
        secret: SecretStr | None = Field(None, description="signing secret (Feishu 签名校验, "
                                         "DingTalk 加签, json HMAC header)")

        @field_validator("url")
        @classmethod
        def _http_url(cls, value: SecretStr) -> SecretStr:
            if not re.match(r"https?://[^/?#\s]+", value.get_secret_value()):
                raise ValueError("expected an http(s) URL")
            return value

        @field_validator("format")
        @classmethod
        def _known_format(cls, value: str) -> str:
            formats = ("wecom_robot", "feishu_bot", "dingtalk_robot", "json")
            if value not in formats:
                raise ValueError(f"expected one of {', '.join(formats)}")
            return value

        @field_validator("secret")
        @classmethod
        def _signing_format(cls, value: SecretStr | None, info: Any) -> SecretStr | None:
            # Feishu signs in the body, DingTalk in the query, json in a header
            if value is not None and info.data.get("format") == "wecom_robot":
                raise ValueError("no secret: WeCom group robots do not sign (the key is in "
                                 "the URL)")
            return value

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = Field(None, description="Bearer key of the agents' API; "
                                      "empty: the routes stay closed")
    ttl: int = Field(7 * 86_400, ge=60, description="seconds a handoff state is kept")
    notify: list[HandoffSettings.NotifyTarget] = Field(
        default_factory=list, description="webhooks told when a handoff opens")
    notify_preview: int = Field(100, ge=0, le=500, description="characters of the user's "
                                "last message in a notification; 0: none (it may be PII)")
    notify_timeout: float = Field(10.0, gt=0, le=60, description="seconds for all attempts "
                                  "(3 at most) of one notification")
    agent_url: str | None = Field(None, description="link for agents, with {bot_id} and "
                                  "{conversation_id}, e.g. https://desk.example.com/{bot_id}/"
                                  "{conversation_id}")

    @field_validator("agent_url")
    @classmethod
    def _agent_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format(bot_id="b", conversation_id="c")
            except (KeyError, IndexError, ValueError):
                raise ValueError("expected a URL with only {bot_id} and {conversation_id} "
                                 "placeholders") from None
        return value


class BotConfig(BaseModel):
    """One ``[bots.<id>]`` table. Channel credentials are extra keys, named as the platform
    names them; the channel's adapter validates them at start-up."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = ""
    channel: str
    app: str = Field(description="'module:attribute' of the BotApp")
    name: str | None = None
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer keys for the OpenAI-compatible API (/v1); empty: API closed")
    mcp: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="[bots.<id>.mcp.<server>] MCP servers whose tools the bot's flows may use")
    web: dict[str, Any] = Field(
        default_factory=dict,
        description="web-chat options (access_key, allowed_origins) that open a bot of "
                    "another channel to the web chat and the widget")
    tools: list[str] | None = Field(
        None, description="the tools (@app.tool and MCP) this bot's flows may call; None: "
                          "all of them. Several bots sharing one app each get their own list")

    @field_validator("app")
    @classmethod
    def _app_ref(cls, value: str) -> str:
        if not _APP_REF.match(value):
            raise ValueError("expected 'module:attribute', e.g. 'examples.support_bot:app'")
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Channel credentials are plain extra keys (each adapter validates them into its own
        # SecretStr model), so repr()/str() mask every value whose key looks secret.
        for name, value in super().__repr_args__():
            if name in ("web", "mcp") or name in (self.model_extra or {}):
                value = _masked(name, value)
            yield name, value

    @property
    def options(self) -> dict[str, Any]:
        """The channel-specific keys (everything not defined above)."""
        return dict(self.model_extra or {})

    def channel_options(self, model: type[M]) -> M:
        """Validate the channel keys with an adapter's ``config_model``.

        Raises:
            ConfigError: naming ``bots.<id>.<key>`` and what is expected; values are never
                echoed (they are often secrets).
        """
        try:
            return model.model_validate(self.options)
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            field = ".".join(str(part) for part in first["loc"])
            key = f"bots.{self.id}.{field}" if field else f"bots.{self.id}"
            expected = str(first["msg"]).removeprefix("Value error, ")
            if first["type"] == "extra_forbidden":
                expected = f"a known key: one of {sorted(model.model_fields)}"
            raise ConfigError(key, expected,
                              "nothing" if first["type"] == "missing" else None) from None


def _masked(key: str | None, value: Any) -> Any:
    """``value`` with every secret-looking key's value masked, recursively (for repr)."""
    if isinstance(value, dict):
        return {k: _masked(str(k), v) for k, v in value.items()}
    if key is not None and _SECRET_KEY.search(key) and value not in (None, ""):
        return _MASK
    if isinstance(value, list):
        return [_masked(None, item) for item in value]
    return value


class Settings(BaseSettings):
    """All of botcore's settings. Build once with :func:`load_settings` and pass it in."""

    model_config = SettingsConfigDict(
        env_prefix="BOTCORE_", env_nested_delimiter="__", extra="forbid",
    )

    redis_url: str | None = Field(None, description="None: start an embedded Redis")
    data_dir: Path = Path(".botcore")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = False
    key_prefix: str = "botcore"
    answer_timeout: float = Field(120.0, gt=0, description="seconds the OpenAI-compatible "
                                  "API waits for a bot's answer before answering 504")
    ingress: IngressSettings = IngressSettings()
    worker: WorkerSettings = WorkerSettings()
    sessions: SessionSettings = SessionSettings()
    llm: LLMSettings = LLMSettings()
    kb: KBSettings = KBSettings()
    handoff: HandoffSettings = HandoffSettings()
    bots: dict[str, BotConfig] = Field(default_factory=dict)

    @field_validator("bots")
    @classmethod
    def _name_bots(cls, bots: dict[str, BotConfig]) -> dict[str, BotConfig]:
        return {bot_id: bot.model_copy(update={"id": bot_id}) for bot_id, bot in bots.items()}

    def bot(self, bot_id: str) -> BotConfig:
        """The bot's settings, or ConfigError naming the known bots."""
        try:
            return self.bots[bot_id]
        except KeyError:
            raise ConfigError(f"bots.{bot_id}", f"one of {sorted(self.bots)}", "nothing") from None


def _config_path(path: str | Path | None) -> Path | None:
    if path is not None:
        found = Path(path)
        if not found.is_file():
            raise ConfigError("BOTCORE_CONFIG", "a readable TOML file", f"{found} (not found)")
        return found
    env = os.environ.get("BOTCORE_CONFIG")
    if env:
        return _config_path(env)
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the TOML file and the environment; raise ConfigError on the first bad key.

    Args:
        path: the TOML file; default ``$BOTCORE_CONFIG`` or ``./botcore.toml`` if present.
        **overrides: values that win over every other source (tests, CLI flags).
    """
    toml_path = _config_path(path)

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
            return tuple(sources)

    try:
        loaded = _FileSettings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc) from None
    except ValueError as exc:  # TOML syntax errors
        raise ConfigError(str(toml_path), "valid TOML", str(exc)) from None
    return loaded


def _config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(root)"
    expected = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        return ConfigError(key, expected, "nothing")
    if first["type"] == "extra_forbidden" or _SECRET_KEY.search(key):
        return ConfigError(key, expected)  # never echo a secret (or a mistyped one) back
    return ConfigError(key, expected, repr(first.get("input"))[:80])
