"""Builders shared by the DingTalk tests (plain functions, not fixtures)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
from fake_dingtalk import FakeDingTalk
from redis.asyncio import Redis

from adapters.dingtalk import DingTalkAdapter
from botcore.channel import AdapterDeps, WebhookRequest
from botcore.keys import KeyBuilder
from botcore.settings import BotConfig

API_BASE = "http://fake.dingtalk"
SECRET = "app-secret"


def make_adapter(redis: Redis, keys: KeyBuilder, fake: FakeDingTalk | None = None,
                 **options: Any) -> DingTalkAdapter:
    """An adapter for bot ``b1`` whose HTTP client talks to ``fake`` in-process."""
    fake = fake or FakeDingTalk()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.asgi()))
    opts = {"client_id": fake.app_key, "client_secret": fake.app_secret, "api_base": API_BASE,
            **options}
    bot = BotConfig(id="b1", channel="dingtalk", app="examples.x:app", **opts)
    return DingTalkAdapter(bot, AdapterDeps(redis=redis, http=http, keys=keys))


def sign(timestamp: str, secret: str = SECRET) -> str:
    """DingTalk's header signature, computed independently of the adapter."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def signed_request(payload: Any, *, ts_ms: int | None = None, secret: str = SECRET,
                   headers: dict[str, str] | None = None) -> WebhookRequest:
    """A POST as DingTalk sends it to an HTTP-mode robot."""
    ts = str(ts_ms if ts_ms is not None else int(time.time() * 1000))
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    hdrs = {"timestamp": ts, "sign": sign(ts, secret), "content-type": "application/json"}
    return WebhookRequest(method="POST", headers={**hdrs, **(headers or {})}, query={},
                          body=body)


def robot_message(msgtype: str = "text", *, group: bool = True, msg_id: str = "msgA1",
                  webhook: str = f"{API_BASE}/robot/sendBySession?session=s1",
                  webhook_expires_ms: int | None = None, **extra: Any) -> dict[str, Any]:
    """A robot message body shaped like DingTalk's documentation sample."""
    now = int(time.time() * 1000)
    body: dict[str, Any] = {
        "conversationId": "cidGroup==" if group else "cidPrivate==",
        "conversationType": "2" if group else "1",
        "conversationTitle": "测试群" if group else None,
        "atUsers": [{"dingtalkId": "$:LWCP_v1:$bot"}] if group else [],
        "chatbotCorpId": "dingcorp", "chatbotUserId": "$:LWCP_v1:$bot",
        "msgId": msg_id, "senderNick": "张三", "isAdmin": True,
        "senderStaffId": "staff001", "senderId": "$:LWCP_v1:$sender",
        "senderCorpId": "dingcorp", "isInAtList": group, "robotCode": "dingappkey",
        "sessionWebhook": webhook,
        "sessionWebhookExpiredTime": webhook_expires_ms or now + 5_400_000,
        "createAt": now, "msgtype": msgtype,
    }
    if msgtype == "text":
        body["text"] = {"content": " 你好 bot" if group else "你好 bot"}
    body.update(extra)
    return {k: v for k, v in body.items() if v is not None}
