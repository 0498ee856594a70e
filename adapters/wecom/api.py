"""WeCom outbound: the app API client, AI bot replies and the group robot notifier.

* :class:`WeComClient`: ``gettoken`` through a Redis-shared :class:`~botcore.outbound.TokenCache`,
  ``message/send`` (text, markdown, image, file), ``media/upload``; a per-member limit
  (30/min and 1000/h, exact windows shared by every worker); each part of a split reply
  recorded in the delivery ledger; errcodes mapped to typed errors; one token refresh.
* :class:`AiBotReplier`: the AI bot's stream state in Redis (read by the webhook when WeCom
  polls) and the one-shot ``response_url`` fallback.
* :class:`WeComGroupRobot`: the group robot webhook (消息推送), 20 messages/min.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import SecretStr, ValidationError
from redis.asyncio import Redis

from botcore.errors import ChannelAuthError, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.ledger import DeliveryLedger
from botcore.outbound import RateLimiter, TokenCache, WindowLimiter, send_with_retry

from ._text import split_utf8
from .errors import (
    CHANNEL,
    WeComApiError,
    WeComDeliveryUnknown,
    WeComError,
    raise_for_errcode,
)
from .models import StreamState

__all__ = ["AiBotReplier", "WeComClient", "WeComGroupRobot", "fit_aibot", "stream_key"]

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com"
TEXT_LIMIT = 2048  # UTF-8 bytes, text and markdown of message/send and robot text
ROBOT_MARKDOWN_LIMIT = 4096
STREAM_TTL = 600  # seconds; WeCom polls a stream for at most 6 minutes
#: UTF-8 bytes of an AI bot reply: ``stream.content`` (document 101031) and the
#: ``response_url`` markdown ``content`` (101138).
AIBOT_LIMIT = 20480
#: appended where an AI bot reply had to be cut (there is no third place to put the rest).
TRUNCATED_MARKER = "\n\n……（内容过长，其余部分已省略）"
#: per member and app: 30 a minute, 1000 an hour; WeCom drops the excess silently (90236).
MEMBER_WINDOWS: tuple[tuple[int, float], ...] = ((30, 60.0), (1000, 3600.0))
#: appchat/send (90248) counts per member across the app's groups: 200 a minute, 10000 a day.
#: Not sent by this adapter (app callbacks are one-to-one); the scope a group path would use.
APPCHAT_MEMBER_WINDOWS: tuple[tuple[int, float], ...] = ((200, 60.0), (10000, 86400.0))

log = logging.getLogger(__name__)


#: errors raised before the request was written: WeCom cannot have received it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError,
             httpx.WriteTimeout, httpx.UnsupportedProtocol)


async def _request(http: httpx.AsyncClient, method: str, url: str, *, idempotent: bool = True,
                   **kwargs: Any) -> dict[str, Any]:
    """One WeCom call → its JSON object, or a typed error. Never puts the URL (which may
    carry an access token or robot key) into an error message.

    Args:
        idempotent: False for calls that must not run twice (``message/send``): a network
            error after the request was written (read timeout, reset) then raises
            :class:`WeComDeliveryUnknown`, which is not retried, instead of
            ``ChannelUnavailable``. Errors before the request was written, HTTP 5xx and
            ``-1`` (busy: WeCom refused it) stay ``ChannelUnavailable`` (retried).
    """
    try:
        response = await http.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        if not idempotent and not isinstance(exc, _NOT_SENT):
            raise WeComDeliveryUnknown(
                f"no answer after the request was sent ({type(exc).__name__})") from None
        raise ChannelUnavailable(f"network error ({type(exc).__name__})", channel=CHANNEL) from None
    if response.status_code >= 500:
        raise ChannelUnavailable(f"HTTP {response.status_code}", channel=CHANNEL)
    if response.status_code >= 400:
        raise WeComApiError(response.status_code, "HTTP error")
    try:
        data = response.json()
    except ValueError:
        raise ChannelUnavailable("answer is not JSON", channel=CHANNEL) from None
    if not isinstance(data, dict):
        raise ChannelUnavailable("answer is not a JSON object", channel=CHANNEL)
    raise_for_errcode(data)
    return data


class WeComClient:
    """The self-built app's API client. Cheap to build; all state lives in Redis.

    Args:
        http: shared HTTP client.
        redis: shared Redis client (token cache, rate limit, delivery ledger).
        keys: key builder.
        corp_id: CorpID. agent_id: the app's AgentId. secret: the app's Secret.
        api_base: ``https://qyapi.weixin.qq.com`` or a test server.
        member_windows: ``(limit, seconds)`` pairs per member and app: WeCom silently drops
            what goes over 30 a minute or 1000 an hour (document 90236).
        max_wait: seconds to wait for the rate limit before raising ChannelRateLimited.
    """

    def __init__(self, http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, *,
                 corp_id: str, agent_id: int, secret: SecretStr,
                 api_base: str = DEFAULT_API_BASE,
                 member_windows: tuple[tuple[int, float], ...] = MEMBER_WINDOWS,
                 max_wait: float = 30.0) -> None:
        self._http = http
        self._corp_id = corp_id
        self._agent_id = agent_id
        self._secret = secret
        self._base = api_base.rstrip("/")
        self._max_wait = max_wait
        self.tokens = TokenCache(redis, keys, CHANNEL, f"{corp_id}:{agent_id}",
                                 self._fetch_token)
        self.limiter = WindowLimiter(redis, keys, CHANNEL, windows=member_windows)
        self.ledger = DeliveryLedger(redis, keys, CHANNEL)

    async def _fetch_token(self) -> tuple[str, float]:
        data = await _request(self._http, "GET", f"{self._base}/cgi-bin/gettoken", params={
            "corpid": self._corp_id, "corpsecret": self._secret.get_secret_value()})
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeComApiError("gettoken", "no access_token in the answer")
        return token, float(data.get("expires_in", 7200))

    async def call(self, path: str, *, params: dict[str, str] | None = None,
                   idempotent: bool = True, **kwargs: Any) -> dict[str, Any]:
        """POST ``path`` with a valid access token; retries throttling, 5xx and one refresh.

        Args:
            idempotent: False for ``message/send`` (see :func:`_request`).

        Raises:
            WeComApiError: content errors; ChannelRateLimited / ChannelUnavailable when
                retries ran out; WeComDeliveryUnknown (non-idempotent calls only).
        """
        async def attempt() -> dict[str, Any]:
            token = await self.tokens.get()
            try:
                return await _request(self._http, "POST", f"{self._base}{path}",
                                      params={**(params or {}), "access_token": token},
                                      idempotent=idempotent, **kwargs)
            except ChannelAuthError:
                await self.tokens.invalidate(token)  # the retry fetches a fresh one
                raise
        return await send_with_retry(attempt)

    def member_scope(self, member: str) -> str:
        """The rate-limit scope of one member of this app (WeCom counts per member and app)."""
        return f"{self._corp_id}:{self._agent_id}:{member}"

    async def send_message(self, touser: str, msgtype: str, body: dict[str, Any]) -> str | None:
        """One ``message/send``, after a slot in every member's windows; returns ``msgid``.

        Raises:
            ChannelRateLimited: a member's window stays full longer than ``max_wait``.
            WeComDeliveryUnknown: the request went out but its answer was lost.
        """
        for member in dict.fromkeys(m for m in touser.split("|") if m):
            await self.limiter.acquire(self.member_scope(member), max_wait=self._max_wait)
        payload = {"touser": touser, "msgtype": msgtype, "agentid": self._agent_id,
                   msgtype: body, "safe": 0, "enable_id_trans": 0,
                   "enable_duplicate_check": 0}  # content-based dedupe would eat real replies
        data = await self.call("/cgi-bin/message/send", json=payload, idempotent=False)
        msgid = data.get("msgid")
        return str(msgid) if msgid else None

    async def send_part(self, idempotency_key: str | None, index: int,
                        send: Callable[[], Awaitable[str | None]]) -> str:
        """Send part ``index`` of a reply once per ``idempotency_key`` (a re-run of the turn
        skips the parts already delivered); returns its msgid (``""`` if unknown).

        A part whose answer was lost (:class:`WeComDeliveryUnknown`) counts as delivered:
        WeCom most likely showed it, and sending it again would show it twice.
        """
        async def deliver() -> str:
            try:
                return await send() or ""
            except WeComDeliveryUnknown as exc:
                log.warning("wecom message/send part %d: %s; counted as delivered", index, exc)
                return ""
        return await self.ledger.part(idempotency_key or None, index, deliver)

    async def send_text(self, touser: str, text: str, *, markdown: bool = False,
                        idempotency_key: str | None = None) -> list[str]:
        """Send ``text`` (split into ≤ 2048-byte parts at sentence ends); returns msgids.

        With an ``idempotency_key``, parts delivered by an earlier run are not sent again.
        """
        msgtype = "markdown" if markdown else "text"
        ids = []
        for index, part in enumerate(split_utf8(text, TEXT_LIMIT)):
            ids.append(await self.send_part(
                idempotency_key, index,
                functools.partial(self.send_message, touser, msgtype, {"content": part})))
        return ids

    async def upload_media(self, kind: str, filename: str, content: bytes) -> str:
        """``media/upload`` (temporary media, 3 days) → ``media_id``."""
        data = await self.call("/cgi-bin/media/upload", params={"type": kind},
                               files={"media": (filename, content)})
        media_id = data.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise WeComApiError("media/upload", "no media_id in the answer")
        return media_id

    async def send_media(self, touser: str, kind: str, media_id: str) -> str | None:
        """Send an uploaded image or file."""
        return await self.send_message(touser, kind, {"media_id": media_id})


def fit_aibot(text: str, limit: int = AIBOT_LIMIT) -> tuple[str, int]:
    """``text`` if it fits ``limit`` UTF-8 bytes, else its head plus :data:`TRUNCATED_MARKER`
    (cut at a sentence end when one fits); returns ``(content, bytes dropped)``."""
    size = len(text.encode("utf-8"))
    if size <= limit:
        return text, 0
    head = split_utf8(text, limit - len(TRUNCATED_MARKER.encode("utf-8")))[0]
    return head + TRUNCATED_MARKER, size - len(head.encode("utf-8"))


def stream_key(keys: KeyBuilder, bot_id: str, stream_id: str) -> str:
    """Redis key of one AI bot stream's state."""
    return keys.channel_state("wecom", bot_id, f"stream:{stream_id}")


class AiBotReplier:
    """AI bot answers: stream state in Redis, and the one-shot ``response_url``.

    Args:
        http: shared HTTP client. redis: shared Redis. keys: key builder.
        bot_id: the botcore bot id (part of the stream key).
        api_base: only ``response_url`` values on this host are called.
    """

    def __init__(self, http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, bot_id: str,
                 api_base: str = DEFAULT_API_BASE) -> None:
        self._http = http
        self._redis = redis
        self._keys = keys
        self._bot_id = bot_id
        self._host = httpx.URL(api_base).host

    async def read(self, stream_id: str) -> StreamState:
        """The stream's state; empty and unfinished if nothing was written yet."""
        raw = await self._redis.get(stream_key(self._keys, self._bot_id, stream_id))
        if raw is None:
            return StreamState()
        try:
            return StreamState.model_validate_json(raw)
        except ValidationError:
            return StreamState()

    async def write(self, stream_id: str, content: str, *, finish: bool) -> None:
        """Store the cumulative ``content``; WeCom's next refresh callback shows it.

        WeCom takes at most 20480 bytes: an unfinished answer shows its first 20480 bytes
        (the rest comes with the final write); a final one too long is cut visibly (the
        adapter sends what does not fit through ``response_url`` first).
        """
        if finish:
            content, dropped = fit_aibot(content)
            if dropped:
                log.warning("wecom aibot stream cut: %d bytes not shown", dropped)
        elif len(content.encode("utf-8")) > AIBOT_LIMIT:
            content = split_utf8(content, AIBOT_LIMIT)[0]
        state = StreamState(content=content, finish=finish).model_dump_json()
        await self._redis.set(stream_key(self._keys, self._bot_id, stream_id), state,
                              ex=STREAM_TTL)

    async def claim(self, response_url: str) -> bool:
        """Mark ``response_url`` as used (it works once); False if it already was."""
        digest = hashlib.sha256(response_url.encode()).hexdigest()[:32]
        key = stream_key(self._keys, self._bot_id, f"url:{digest}")
        return bool(await self._redis.set(key, b"1", nx=True, ex=3600))

    async def release(self, response_url: str) -> None:
        """Forget a claim whose POST failed, so that a retry of the turn may use it."""
        digest = hashlib.sha256(response_url.encode()).hexdigest()[:32]
        await self._redis.delete(stream_key(self._keys, self._bot_id, f"url:{digest}"))

    async def respond(self, response_url: str, text: str) -> None:
        """POST one markdown message to ``response_url`` (usable once, for 1 hour)."""
        url = httpx.URL(response_url)
        if url.host != self._host:
            raise WeComError("response_url is not on the configured api_base host")
        content, dropped = fit_aibot(text) if text else (" ", 0)
        if dropped:
            log.warning("wecom aibot response_url reply cut: %d bytes not sent (one message "
                        "of at most %d bytes per response_url)", dropped, AIBOT_LIMIT)
        await send_with_retry(lambda: _request(self._http, "POST", response_url, json={
            "msgtype": "markdown", "markdown": {"content": content}}))


class WeComGroupRobot:
    """Group robot (消息推送) notifier: text with @-mentions, markdown; ≤ 20 messages/min.

    Args:
        http: HTTP client.
        webhook_url: the full robot URL (``.../cgi-bin/webhook/send?key=...``), or
        key: the robot key alone (the URL is built on ``api_base``).
        limiter: a shared Redis :class:`RateLimiter` (rate 20/60, burst 20) when several
            processes use the same robot; otherwise a per-instance window is used.
        clock, sleep: injectable for tests.
    """

    PER_MINUTE = 20

    def __init__(self, http: httpx.AsyncClient, webhook_url: str | None = None, *,
                 key: str | None = None, api_base: str = DEFAULT_API_BASE,
                 limiter: RateLimiter | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if webhook_url:
            self._url = httpx.URL(webhook_url)
        elif key:
            self._url = httpx.URL(f"{api_base.rstrip('/')}/cgi-bin/webhook/send",
                                  params={"key": key})
        else:
            raise WeComError("WeComGroupRobot needs webhook_url or key")
        self._http = http
        self._limiter = limiter
        self._scope = "robot:" + hashlib.sha256(str(self._url).encode()).hexdigest()[:16]
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque(maxlen=self.PER_MINUTE)

    async def _throttle(self) -> None:
        if self._limiter is not None:
            await self._limiter.acquire(self._scope, max_wait=60.0)
            return
        if len(self._sent) == self.PER_MINUTE:
            wait = 60.0 - (self._clock() - self._sent[0])
            if wait > 0:
                await self._sleep(wait)
        self._sent.append(self._clock())

    async def _post(self, payload: dict[str, Any]) -> None:
        await self._throttle()
        await send_with_retry(lambda: _request(self._http, "POST", str(self._url), json=payload))

    async def send_text(self, content: str, mentioned_list: list[str] | None = None,
                        mentioned_mobile_list: list[str] | None = None) -> int:
        """Send text (≤ 2048 bytes per message); mentions go with the first part.

        Returns:
            the number of messages sent.
        """
        parts = split_utf8(content, TEXT_LIMIT)
        for index, part in enumerate(parts):
            body: dict[str, Any] = {"content": part}
            if index == 0 and mentioned_list:
                body["mentioned_list"] = mentioned_list
            if index == 0 and mentioned_mobile_list:
                body["mentioned_mobile_list"] = mentioned_mobile_list
            await self._post({"msgtype": "text", "text": body})
        return len(parts)

    async def send_markdown(self, content: str) -> int:
        """Send markdown (≤ 4096 bytes per message); returns the number of messages."""
        parts = split_utf8(content, ROBOT_MARKDOWN_LIMIT)
        for part in parts:
            await self._post({"msgtype": "markdown", "markdown": {"content": part}})
        return len(parts)
