"""FeishuClient: tenant token, IM send / reply / upload and CardKit calls.

Every call maps Feishu's answer onto the core error tree, so that ``send_with_retry`` can
decide from fields alone: HTTP 429 or code 99991400 -> ChannelRateLimited (``retry_after``
from ``x-ogw-ratelimit-reset``), token codes -> FeishuAuthError (the cached token is dropped,
the retry fetches a new one), 5xx and network errors -> ChannelUnavailable, any other
non-zero code -> FeishuApiError.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from redis.asyncio import Redis

from botcore.errors import ChannelRateLimited, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.outbound import TokenCache, WindowLimiter

from .errors import CHANNEL, FeishuApiError, FeishuAuthError
from .models import FeishuConfig

__all__ = ["CHAT_QPS", "TOKEN_ERRORS", "FeishuClient"]

log = logging.getLogger(__name__)

TOKEN_ERRORS = frozenset({99991661, 99991663, 99991668})
RATE_LIMITED = 99991400
#: Feishu allows 5 messages/s per chat (shared by the bots in a group): at most 5 in any
#: second, exactly (a token bucket would let its burst through on top of its rate).
CHAT_QPS = 5


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def check(resp: httpx.Response) -> dict[str, Any]:
    """Return the JSON body of a successful answer, or raise the matching error."""
    body = _json(resp)
    code = body.get("code")
    msg = str(body.get("msg") or resp.reason_phrase or "")
    if resp.status_code == 429 or code == RATE_LIMITED:
        try:
            retry_after = float(resp.headers.get("x-ogw-ratelimit-reset", "1"))
        except ValueError:
            retry_after = 1.0
        raise ChannelRateLimited(retry_after, channel=CHANNEL, errcode=code or 429, errmsg=msg)
    if code in TOKEN_ERRORS:
        raise FeishuAuthError(code, msg)
    if resp.status_code >= 500:
        raise ChannelUnavailable(f"HTTP {resp.status_code} (code {code})", channel=CHANNEL)
    if resp.status_code >= 400 or code != 0:
        raise FeishuApiError(code if code is not None else resp.status_code, msg)
    return body


class FeishuClient:
    """The Open Platform calls the adapter makes. Safe to share across tasks.

    Args:
        config: the bot's Feishu settings.
        http: shared httpx client (tests pass one on an ASGI fake server).
        redis: shared Redis (token cache, per-chat rate limit).
        keys: key builder.
    """

    def __init__(self, config: FeishuConfig, http: httpx.AsyncClient, redis: Redis,
                 keys: KeyBuilder) -> None:
        self._config = config
        self._http = http
        self._base = config.api_base.rstrip("/") + "/open-apis"
        self.tokens = TokenCache(redis, keys, CHANNEL, config.app_id, self._fetch_token)
        self.limiter = WindowLimiter(redis, keys, CHANNEL, windows=((CHAT_QPS, 1.0),))

    async def _fetch_token(self) -> tuple[str, float]:
        payload = {"app_id": self._config.app_id,
                   "app_secret": self._config.app_secret.get_secret_value()}
        try:
            resp = await self._http.post(f"{self._base}/auth/v3/tenant_access_token/internal",
                                         json=payload)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"token request failed: {type(exc).__name__}",
                                     channel=CHANNEL) from None
        body = check(resp)
        log.info("feishu tenant token refreshed app=%s expire=%s", self._config.app_id,
                 body.get("expire"))
        return str(body["tenant_access_token"]), float(body.get("expire", 7200))

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated call; returns ``data``. Drops the token on a token error."""
        data = (await self.request(method, path, **kwargs)).get("data")
        return data if isinstance(data, dict) else {}

    async def request(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """One authenticated call; returns the whole JSON body (``code``, ``msg``, ...)."""
        token = await self.tokens.get()
        try:
            resp = await self._http.request(method, self._base + path,
                                            headers={"Authorization": f"Bearer {token}"},
                                            **kwargs)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"{method} {path}: {type(exc).__name__}",
                                     channel=CHANNEL) from None
        try:
            body = check(resp)
        except FeishuAuthError:
            await self.tokens.invalidate(token)
            raise
        return body

    async def bot_info(self) -> dict[str, Any]:
        """``GET bot/v3/info``: the bot's ``open_id``, ``app_name``... (top-level ``bot``)."""
        bot = (await self.request("GET", "/bot/v3/info")).get("bot")
        return bot if isinstance(bot, dict) else {}

    # IM ----------------------------------------------------------------------------------
    async def send_message(self, chat_id: str, msg_type: str, content: dict[str, Any],
                           uuid: str = "", *, receive_id_type: str = "chat_id") -> str:
        """``POST im/v1/messages``; returns the new message_id."""
        await self.limiter.acquire(chat_id)
        body: dict[str, Any] = {"receive_id": chat_id, "msg_type": msg_type,
                                "content": json.dumps(content, ensure_ascii=False)}
        if uuid:
            body["uuid"] = uuid
        data = await self.call("POST", "/im/v1/messages",
                               params={"receive_id_type": receive_id_type}, json=body)
        return str(data.get("message_id", ""))

    async def reply_message(self, chat_id: str, message_id: str, msg_type: str,
                            content: dict[str, Any], uuid: str = "", *,
                            in_thread: bool = False) -> str:
        """``POST im/v1/messages/{message_id}/reply``; returns the new message_id."""
        await self.limiter.acquire(chat_id)
        body: dict[str, Any] = {"msg_type": msg_type, "reply_in_thread": in_thread,
                                "content": json.dumps(content, ensure_ascii=False)}
        if uuid:
            body["uuid"] = uuid
        data = await self.call("POST", f"/im/v1/messages/{message_id}/reply", json=body)
        return str(data.get("message_id", ""))

    async def upload_image(self, content: bytes, name: str = "image") -> str:
        """``POST im/v1/images`` (image_type=message); returns the image_key."""
        data = await self.call("POST", "/im/v1/images", data={"image_type": "message"},
                               files={"image": (name, content)})
        return str(data["image_key"])

    async def upload_file(self, content: bytes, name: str, file_type: str = "stream") -> str:
        """``POST im/v1/files``; returns the file_key."""
        data = await self.call("POST", "/im/v1/files",
                               data={"file_type": file_type, "file_name": name},
                               files={"file": (name, content)})
        return str(data["file_key"])

    # CardKit -----------------------------------------------------------------------------
    async def create_card(self, card: dict[str, Any]) -> str:
        """``POST cardkit/v1/cards`` with a JSON 2.0 card; returns the card_id."""
        data = await self.call("POST", "/cardkit/v1/cards",
                               json={"type": "card_json",
                                     "data": json.dumps(card, ensure_ascii=False)})
        return str(data["card_id"])

    async def set_element_content(self, card_id: str, element_id: str, content: str,
                                  sequence: int, uuid: str) -> None:
        """``PUT cardkit/v1/cards/{card_id}/elements/{element_id}/content`` (full text)."""
        await self.call("PUT", f"/cardkit/v1/cards/{card_id}/elements/{element_id}/content",
                        json={"content": content, "sequence": sequence, "uuid": uuid})

    async def set_card_settings(self, card_id: str, settings: dict[str, Any], sequence: int,
                                uuid: str) -> None:
        """``PATCH cardkit/v1/cards/{card_id}/settings`` (e.g. streaming_mode off)."""
        await self.call("PATCH", f"/cardkit/v1/cards/{card_id}/settings",
                        json={"settings": json.dumps(settings), "sequence": sequence,
                              "uuid": uuid})
