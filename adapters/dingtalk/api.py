"""DingTalk API client: access token, replies, AI-card streaming, custom group robots.

Replies go through the inbound message's ``sessionWebhook`` while it is valid (no token
needed), otherwise through the OpenAPI with an access token shared by every worker
(:class:`~botcore.outbound.TokenCache`):

* private chat: ``POST /v1.0/robot/oToMessages/batchSend`` (``userIds=[senderStaffId]``);
* group chat: ``POST /v1.0/robot/groupMessages/send`` (``openConversationId``).

``msgParam`` is a JSON *string*. Calls are rate limited across workers
(:class:`~botcore.outbound.RateLimiter`) and retried by
:func:`~botcore.outbound.send_with_retry` (throttling, 5xx, one token refresh).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import httpx
from redis.asyncio import Redis

from adapters.dingtalk.crypto import robot_sign
from adapters.dingtalk.errors import (
    CHANNEL,
    DingTalkApiError,
    DingTalkError,
    DingTalkRateLimited,
    api_error,
)
from adapters.dingtalk.models import DingTalkConfig
from botcore.errors import ChannelAuthError, ChannelRateLimited, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.ledger import DeliveryLedger
from botcore.message import OutboundMessage, SendResult
from botcore.outbound import RateLimiter, TokenCache, send_with_retry

__all__ = ["DingTalkCardStream", "DingTalkClient", "DingTalkGroupRobot", "request_json"]

log = logging.getLogger(__name__)

#: A session webhook is not used in its last this-many seconds (clock skew, queueing).
WEBHOOK_MARGIN = 120.0
#: Robot webhooks (session and custom) accept 20 messages a minute.
ROBOT_PER_MINUTE = 20.0
CUSTOM_ROBOT_URL = "https://oapi.dingtalk.com/robot/send"


async def request_json(http: httpx.AsyncClient, method: str, url: str, *, body: Any,
                headers: Mapping[str, str] | None = None,
                params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One HTTP call; DingTalk's error answers become typed exceptions (see errors.py)."""
    try:
        resp = await http.request(method, url, json=body, headers=headers, params=params)
    except httpx.HTTPError as exc:
        raise ChannelUnavailable(f"{type(exc).__name__} calling DingTalk",
                                 channel=CHANNEL) from None
    try:
        data: Any = resp.json()
    except ValueError:
        data = None
    error = api_error(resp.status_code, data, resp.headers)
    if error is not None:
        raise error
    if not isinstance(data, dict):
        raise DingTalkApiError(resp.status_code, "answer is not a JSON object")
    return data


def _title(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "reply"
    return first.lstrip("# ")[:20] or "reply"


def _parts(message: OutboundMessage) -> list[tuple[str, str]]:
    """The message as (kind, value) parts: ``text``, ``markdown`` or ``image`` (a URL).

    Non-image attachments with a URL are appended to the text as links.
    """
    text = message.text
    images: list[tuple[str, str]] = []
    for seg in message.attachments:
        if seg.type == "image" and seg.url:
            images.append(("image", seg.url))
        elif seg.url:
            text += f"\n{seg.name or seg.url}: {seg.url}"
    parts = [(message.format, text)] if text.strip() else []
    return parts + images


class DingTalkClient:
    """Sends replies for one DingTalk app.

    Args:
        http: shared HTTP client.
        redis: shared Redis (token cache, rate limits).
        keys: key builder.
        config: the bot's validated settings.
        clock: ``time.time``; injectable for tests.
    """

    def __init__(self, http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder,
                 config: DingTalkConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.config = config
        self.clock = clock
        self.api_base = config.api_base.rstrip("/")
        self.tokens = TokenCache(redis, keys, CHANNEL, config.client_id, self._fetch_token)
        self.api_limiter = RateLimiter(redis, keys, CHANNEL, rate=config.api_qps,
                                       burst=max(1.0, config.api_qps))
        self.webhook_limiter = RateLimiter(redis, keys, CHANNEL, rate=ROBOT_PER_MINUTE / 60,
                                           burst=ROBOT_PER_MINUTE)
        self.ledger = DeliveryLedger(redis, keys, CHANNEL)

    async def _fetch_token(self) -> tuple[str, float]:
        url = f"{self.api_base}/v1.0/oauth2/accessToken"
        data = await request_json(self.http, "POST", url, body={
            "appKey": self.config.client_id,
            "appSecret": self.config.client_secret.get_secret_value(),
        })
        token = data.get("accessToken")
        if not isinstance(token, str) or not token:
            raise DingTalkApiError("no_token", "accessToken missing from the answer")
        return token, float(data.get("expireIn", 7200))

    async def openapi(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One OpenAPI call with the shared token, under the org QPS limit.

        Raises:
            ChannelError: typed per errors.py; on ChannelAuthError the token is forgotten so
                that the retry fetches a new one.
        """
        await self.api_limiter.acquire(f"org:{self.config.client_id}")
        token = await self.tokens.get()
        try:
            return await request_json(self.http, method, f"{self.api_base}{path}", body=body,
                               headers={"x-acs-dingtalk-access-token": token})
        except ChannelAuthError:
            await self.tokens.invalidate(token)
            raise

    def webhook_valid(self, context: Mapping[str, Any]) -> bool:
        """The session webhook exists and has more than WEBHOOK_MARGIN seconds left."""
        url, expires = context.get("sessionWebhook"), context.get("sessionWebhookExpiredTime")
        if not url or not isinstance(expires, int | float):
            return False
        return self.clock() * 1000 < expires - WEBHOOK_MARGIN * 1000

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send text, markdown and images; one platform message per part.

        Each part is recorded in the delivery ledger under the message's idempotency key, so
        a re-run of the turn (a later part failed, a worker died) skips the parts the user
        already got.
        """
        parts = _parts(message)
        if not parts:
            raise DingTalkError("nothing to send: empty text and no image attachment")
        ctx = message.context
        use_webhook = self.webhook_valid(ctx)
        records: list[str] = []
        for index, (kind, value) in enumerate(parts):
            records.append(await self.ledger.part(
                message.idempotency_key, index,
                partial(self._send_part, ctx, kind, value, use_webhook)))
        via = [record.partition(":")[0] for record in records]
        ids = [record.partition(":")[2] for record in records if record.startswith("openapi:")]
        return SendResult(message_id=ids[0] if ids else None, parts=len(parts),
                          extra={"via": via[0] if len(set(via)) == 1 else "mixed"})

    async def _send_part(self, ctx: Mapping[str, Any], kind: str, value: str,
                         use_webhook: bool) -> str:
        """Send one part; the ledger record ``"sessionWebhook:"`` or ``"openapi:<key>"``."""
        if use_webhook and await self._via_webhook(ctx, kind, value):
            return "sessionWebhook:"
        key = await send_with_retry(partial(self._via_openapi, ctx, kind, value))
        return f"openapi:{key}"

    async def _via_webhook(self, ctx: Mapping[str, Any], kind: str, value: str) -> bool:
        """Post to the session webhook; False when it is over its budget (use the OpenAPI).

        A throttled session webhook blocks for minutes (errcode 130101), so it is never
        waited for: the OpenAPI takes over.
        """
        scope = f"session:{ctx.get('conversationId')}"
        if await self.webhook_limiter.reserve(scope) > 0:
            return False
        body: dict[str, Any]
        if kind == "text":
            body = {"msgtype": "text", "text": {"content": value}}
        else:
            text = f"![image]({value})" if kind == "image" else value
            body = {"msgtype": "markdown", "markdown": {"title": _title(text), "text": text}}
        try:
            await request_json(self.http, "POST", str(ctx["sessionWebhook"]), body=body)
        except ChannelRateLimited:
            log.info("dingtalk session webhook throttled; falling back to the OpenAPI")
            return False
        return True

    async def _via_openapi(self, ctx: Mapping[str, Any], kind: str, value: str) -> str:
        msg_key, param = {
            "text": ("sampleText", {"content": value}),
            "markdown": ("sampleMarkdown", {"title": _title(value), "text": value}),
            "image": ("sampleImageMsg", {"photoURL": value}),
        }[kind]
        body: dict[str, Any] = {"robotCode": self.config.robot, "msgKey": msg_key,
                                "msgParam": json.dumps(param, ensure_ascii=False)}
        if ctx.get("conversationType") == "2":
            body["openConversationId"] = ctx.get("conversationId")
            data = await self.openapi("POST", "/v1.0/robot/groupMessages/send", body)
        else:
            staff = ctx.get("senderStaffId")
            if not staff:
                raise DingTalkError("cannot send to a private chat without senderStaffId")
            body["userIds"] = [staff]
            data = await self.openapi("POST", "/v1.0/robot/oToMessages/batchSend", body)
            _check_batch(data)
        return str(data.get("processQueryKey", ""))


def _check_batch(data: Mapping[str, Any]) -> None:
    """batchSend answers 200 even when the one recipient was refused."""
    if data.get("flowControlledStaffIdList"):
        raise DingTalkRateLimited(60.0, "flowControlled", "recipient is flow-controlled")
    if data.get("invalidStaffIdList"):
        raise DingTalkApiError("invalidStaffId", "the recipient is not a valid staff id")


class DingTalkCardStream:
    """An answer streamed into an AI card (``PUT /v1.0/card/streaming``), throttled.

    The card is created and delivered on the first update; updates closer together than
    ``min_interval`` seconds are skipped (the next one carries the whole text anyway).
    """

    def __init__(self, client: DingTalkClient, message: OutboundMessage, *,
                 min_interval: float = 0.5,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._message = message
        self._min_interval = min_interval
        self._monotonic = monotonic
        self._last = float("-inf")
        self.track_id = message.idempotency_key or uuid.uuid4().hex
        self._created = False

    def _deliver_body(self) -> dict[str, Any]:
        cfg, ctx = self._client.config, self._message.context
        body: dict[str, Any] = {
            "cardTemplateId": cfg.card_template_id, "outTrackId": self.track_id,
            "cardData": {"cardParamMap": {cfg.card_content_key: "", "flowStatus": "1"}},
            "callbackType": "STREAM", "userIdType": 1,
        }
        if ctx.get("conversationType") == "2":
            body["openSpaceId"] = f"dtv1.card//IM_GROUP.{ctx.get('conversationId')}"
            body["imGroupOpenSpaceModel"] = {"supportForward": True}
            body["imGroupOpenDeliverModel"] = {"robotCode": cfg.robot}
        else:
            body["openSpaceId"] = f"dtv1.card//IM_ROBOT.{ctx.get('senderStaffId')}"
            body["imRobotOpenSpaceModel"] = {"supportForward": True}
            body["imRobotOpenDeliverModel"] = {"spaceType": "IM_ROBOT"}
        return body

    async def _ensure_card(self) -> None:
        """Create and deliver the card once; a re-run of the turn (same idempotency key)
        finds the card in the delivery ledger and keeps writing into it."""
        if self._created:
            return
        key = self._message.idempotency_key
        ledger = self._client.ledger
        if await ledger.stream_handle(key) is None:
            await send_with_retry(lambda: self._client.openapi(
                "POST", "/v1.0/card/instances/createAndDeliver", self._deliver_body()))
            await ledger.keep_stream_handle(key, {"outTrackId": self.track_id})
        self._created = True

    async def _push(self, text: str, *, final: bool) -> None:
        await self._ensure_card()
        body = {"outTrackId": self.track_id, "guid": uuid.uuid4().hex,
                "key": self._client.config.card_content_key, "content": text,
                "isFull": True, "isFinalize": final, "isError": False}
        await send_with_retry(lambda: self._client.openapi("PUT", "/v1.0/card/streaming", body))
        self._last = self._monotonic()

    async def update(self, text: str) -> None:
        """Show the answer so far (skipped when the last push was too recent)."""
        if self._monotonic() - self._last >= self._min_interval:
            await self._push(text, final=False)

    async def finish(self, text: str) -> SendResult:
        """Push the final text, mark the card finished (flowStatus 3)."""
        await self._push(text, final=True)
        key = self._client.config.card_content_key
        body = {"outTrackId": self.track_id,
                "cardData": {"cardParamMap": {key: text, "flowStatus": "3"}}}
        await send_with_retry(lambda: self._client.openapi("PUT", "/v1.0/card/instances", body))
        return SendResult(message_id=self.track_id, extra={"via": "card"})


class DingTalkGroupRobot:
    """A custom group robot (自定义机器人) with 加签 signing: an outbound-only notifier.

    Args:
        http: HTTP client.
        access_token: the ``access_token`` of the robot's webhook URL.
        secret: the signing secret (``SEC...``).
        redis: with ``keys``, share the 20 messages/minute budget across workers.
        keys: key builder.
        url: the webhook endpoint (tests point it at a fake).
        clock: ``time.time``; injectable for tests.

    Example:
        >>> robot = DingTalkGroupRobot(http, "abc", "SECxyz")  # doctest: +SKIP
        >>> await robot.send_text("deploy finished")  # doctest: +SKIP
    """

    def __init__(self, http: httpx.AsyncClient, access_token: str, secret: str, *,
                 redis: Redis | None = None, keys: KeyBuilder | None = None,
                 url: str = CUSTOM_ROBOT_URL, clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self._token = access_token
        self._secret = secret
        self._url = url
        self.clock = clock
        self._limiter = (RateLimiter(redis, keys, CHANNEL, rate=ROBOT_PER_MINUTE / 60,
                                     burst=ROBOT_PER_MINUTE)
                         if redis is not None and keys is not None else None)

    def signed_url(self) -> str:
        """The webhook URL with ``&timestamp=&sign=`` for now."""
        ts = str(int(self.clock() * 1000))
        return (f"{self._url}?access_token={self._token}"
                f"&timestamp={ts}&sign={robot_sign(ts, self._secret)}")

    async def _send(self, body: dict[str, Any]) -> SendResult:
        if self._limiter is not None:
            scope = "robot:" + uuid.uuid5(uuid.NAMESPACE_URL, self._token).hex[:16]
            await self._limiter.acquire(scope)
        await request_json(self._http, "POST", self.signed_url(), body=body)
        return SendResult()

    async def send_text(self, content: str, *, at_mobiles: tuple[str, ...] = (),
                        at_all: bool = False) -> SendResult:
        """Send a text message."""
        return await self._send({"msgtype": "text", "text": {"content": content},
                                 "at": {"atMobiles": list(at_mobiles), "isAtAll": at_all}})

    async def send_markdown(self, title: str, text: str) -> SendResult:
        """Send a markdown message (``title`` shows in the notification)."""
        return await self._send({"msgtype": "markdown",
                                 "markdown": {"title": title, "text": text}})
