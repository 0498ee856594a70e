"""Tell human agents that a conversation waits for them: ``[[handoff.notify]]`` webhooks.

When :class:`~botcore.handoff.HandoffDesk` opens a handoff (once per handoff: the desk keeps
a Redis ``SET NX`` marker), :class:`HandoffNotifier` posts one message to every target, all
targets at once, each with at most 3 attempts within ``handoff.notify_timeout`` seconds
(network errors, HTTP 429/5xx and the platforms' rate-limit codes are retried). A failure is
logged as a warning naming the target's host and format, never its URL (it holds the robot's
key), its secret or the message; the user's turn goes on.

Formats (the platforms' documented webhook bodies):

* ``wecom_robot`` — WeCom group robot: ``{"msgtype": "markdown", "markdown": {"content"}}``;
  success is ``errcode == 0``.
* ``feishu_bot`` — Feishu/Lark custom bot: ``{"msg_type": "text", "content": {"text"}}``;
  with a secret, ``timestamp`` (seconds) and ``sign = base64(hmac_sha256(key=
  f"{timestamp}\\n{secret}", msg=b""))`` in the body; success is ``code == 0``.
* ``dingtalk_robot`` — DingTalk custom robot: ``{"msgtype": "markdown", "markdown": {"title",
  "text"}}``; with a secret, query parameters ``timestamp`` (ms) and ``sign =
  base64(hmac_sha256(key=secret, msg=f"{timestamp}\\n{secret}"))`` (URL-encoded); success
  is ``errcode == 0``.
* ``json`` — :meth:`HandoffEvent.as_json`; with a secret, headers ``X-Botcore-Timestamp``
  and ``X-Botcore-Signature: sha256=<hex hmac_sha256(secret, f"{timestamp}.{body}")>``; any
  2xx is success.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from botcore.logging import get_logger
from botcore.message import InboundMessage
from botcore.settings import HandoffSettings

__all__ = ["HandoffEvent", "HandoffNotifier", "dingtalk_sign", "feishu_sign", "json_sign"]

Target = HandoffSettings.NotifyTarget
ATTEMPTS = 3
#: HTTP 200 answers that mean "too many messages, try again" (WeCom, DingTalk, Feishu).
RATE_LIMIT_CODES = frozenset({45009, 130101, 11232})
_log = get_logger("botcore.handoff_notify")


class _Retry(Exception):
    """A failure worth another attempt (network, 429/5xx, a platform rate limit)."""


class _GiveUp(Exception):
    """A failure another attempt would not fix (4xx, a platform error code)."""


def feishu_sign(secret: str, timestamp: int) -> str:
    """Feishu custom bot signature: HMAC-SHA256 keyed with ``"{timestamp}\\n{secret}"`` over
    nothing, base64."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk custom robot signature (before URL encoding): HMAC-SHA256 keyed with the
    secret over ``"{timestamp}\\n{secret}"``, base64."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def json_sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``b"{timestamp}." + body``)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass(frozen=True)
class HandoffEvent:
    """What agents are told about a new handoff (``last_message``: a preview or None)."""

    bot_id: str
    conversation_id: str
    channel: str
    reason: str
    user_id: str
    user_name: str | None
    last_message: str | None
    agent_url: str | None

    @classmethod
    def opened(cls, message: InboundMessage, reason: str,
               settings: HandoffSettings) -> HandoffEvent:
        """The event for a handoff opened on ``message`` (preview per ``notify_preview``)."""
        limit = settings.notify_preview
        preview = None
        if limit:
            text = " ".join(message.text.split())
            preview = text if len(text) <= limit else text[:limit] + "…"
        link = None
        if settings.agent_url:
            link = settings.agent_url.format(bot_id=quote(message.bot_id, safe=""),
                                             conversation_id=quote(message.conversation.id,
                                                                   safe=""))
        return cls(bot_id=message.bot_id, conversation_id=message.conversation.id,
                   channel=message.channel, reason=reason, user_id=message.sender.id,
                   user_name=message.sender.name, last_message=preview, agent_url=link)

    def as_json(self) -> dict[str, Any]:
        """The ``json`` format's body."""
        body: dict[str, Any] = {
            "event": "handoff_opened", "bot_id": self.bot_id,
            "conversation_id": self.conversation_id, "channel": self.channel,
            "reason": self.reason, "user": {"id": self.user_id, "name": self.user_name},
            "last_message": self.last_message}
        if self.agent_url:
            body["agent_url"] = self.agent_url
        return body

    def lines(self, bold: Callable[[str], str] = str) -> list[str]:
        """Human-readable lines (``bold`` marks the labels up for markdown formats)."""
        user = self.user_id if not self.user_name or self.user_name == self.user_id else (
            f"{self.user_name} ({self.user_id})")
        rows = [("Bot", self.bot_id), ("会话 Conversation", self.conversation_id),
                ("用户 User", user), ("原因 Reason", self.reason or "-")]
        if self.last_message is not None:
            rows.append(("消息 Message", self.last_message))
        if self.agent_url:
            rows.append(("处理 Open", self.agent_url))
        return [f"{bold(label)}: {value}" for label, value in rows]


TITLE = "转人工 / Handoff requested"


def build_request(target: Target, event: HandoffEvent, now: float) -> dict[str, Any]:
    """``httpx`` keyword arguments (url, json or content, headers) for one target."""
    url = target.url.get_secret_value()
    secret = target.secret.get_secret_value() if target.secret else None
    if target.format == "wecom_robot":
        text = "\n".join([f"## {TITLE}", *(f"> {line}" for line in event.lines(
            lambda label: f"**{label}**"))])
        return {"url": url, "json": {"msgtype": "markdown", "markdown": {"content": text}}}
    if target.format == "feishu_bot":
        body: dict[str, Any] = {"msg_type": "text",
                                "content": {"text": "\n".join([TITLE, *event.lines()])}}
        if secret:
            body.update(timestamp=str(int(now)), sign=feishu_sign(secret, int(now)))
        return {"url": url, "json": body}
    if target.format == "dingtalk_robot":
        text = "\n\n".join([f"### {TITLE}", *event.lines(lambda label: f"**{label}**")])
        request: dict[str, Any] = {"url": url, "json": {
            "msgtype": "markdown", "markdown": {"title": TITLE, "text": text}}}
        if secret:  # added to the URL's own query (access_token); httpx's params= replaces it
            millis = int(now * 1000)
            request["url"] = httpx.URL(url).copy_merge_params(
                {"timestamp": str(millis), "sign": dingtalk_sign(secret, millis)})
        return request
    raw = json.dumps(event.as_json(), ensure_ascii=False).encode()
    headers = {"content-type": "application/json"}
    if secret:
        headers.update({"x-botcore-timestamp": str(int(now)),
                        "x-botcore-signature": json_sign(secret, int(now), raw)})
    return {"url": url, "content": raw, "headers": headers}


def _check(target: Target, response: httpx.Response) -> None:
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retry(f"HTTP {status}")
    if status >= 300:
        raise _GiveUp(f"HTTP {status}")
    if target.format == "json":
        return
    try:
        answer = response.json()
    except ValueError:
        raise _GiveUp("answer is not JSON") from None
    code = answer.get("code", answer.get("errcode", 0)) if isinstance(answer, dict) else 0
    if code in RATE_LIMIT_CODES:
        raise _Retry(f"rate limited (code {code})")
    if code not in (0, None):
        raise _GiveUp(f"code {code}")


class HandoffNotifier:
    """Posts a :class:`HandoffEvent` to the ``[[handoff.notify]]`` targets.

    Args:
        settings: the ``[handoff]`` settings (targets, preview length, time budget).
        http: a shared client; None: a client per notification.
        clock: ``time.time`` (injectable for signature tests).
        retry_wait: first back-off between attempts, in seconds (doubles, at most 2 s).
    """

    def __init__(self, settings: HandoffSettings, http: httpx.AsyncClient | None = None, *,
                 clock: Callable[[], float] = time.time, retry_wait: float = 0.5) -> None:
        self.settings = settings
        self.http = http
        self.clock = clock
        self.retry_wait = retry_wait

    @property
    def targets(self) -> list[Target]:
        """The configured targets."""
        return self.settings.notify

    async def opened(self, message: InboundMessage, reason: str) -> int:
        """Notify every target of a handoff opened on ``message``; returns how many
        accepted it. Never raises for a target's failure."""
        if not self.targets:
            return 0
        event = HandoffEvent.opened(message, reason, self.settings)
        if self.http is not None:
            results = await self._all(self.http, event)
        else:
            async with httpx.AsyncClient() as client:
                results = await self._all(client, event)
        return sum(results)

    async def _all(self, client: httpx.AsyncClient, event: HandoffEvent) -> list[bool]:
        return list(await asyncio.gather(*(self._one(client, target, event)
                                           for target in self.targets)))

    async def _one(self, client: httpx.AsyncClient, target: Target,
                   event: HandoffEvent) -> bool:
        budget = self.settings.notify_timeout
        host = urlsplit(target.url.get_secret_value()).hostname or "?"
        attempts = 0
        try:
            async with asyncio.timeout(budget):
                async for attempt in AsyncRetrying(
                        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(budget),
                        wait=wait_exponential(multiplier=self.retry_wait, max=2),
                        retry=retry_if_exception_type(_Retry), reraise=True):
                    with attempt:
                        attempts += 1
                        await self._post(client, target, event, budget)
            return True
        except (_Retry, _GiveUp, TimeoutError) as exc:
            reason = str(exc) or "timed out"
        _log.warning("handoff notification not delivered", host=host, format=target.format,
                     attempts=attempts, reason=reason, bot_id=event.bot_id,
                     conversation_id=event.conversation_id)
        return False

    async def _post(self, client: httpx.AsyncClient, target: Target, event: HandoffEvent,
                    budget: float) -> None:
        request = build_request(target, event, self.clock())
        try:
            response = await client.post(**request, timeout=min(budget, 5.0))
        except httpx.TransportError as exc:  # its text may hold the URL: keep the type only
            raise _Retry(type(exc).__name__) from None
        _check(target, response)
