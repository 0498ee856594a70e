"""Helpers for the Feishu adapter tests: Feishu-side encryption, signing and sample events."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from typing import Any

from Crypto.Cipher import AES  # pycryptodome: lark-oapi's own AES dependency, not ours

from adapters.feishu import FeishuAdapter
from botcore.channel import WebhookRequest

APP_ID = "cli_test"
APP_SECRET = "app-s3cr3t-789"
TOKEN = "vtoken-123"
ENCRYPT_KEY = "enc-key-456"
NOW = 1_700_000_000.0
BOT_OPEN_ID = "ou_bot"

MakeAdapter = Callable[..., FeishuAdapter]


def lark_encrypt(key: str, plaintext: bytes) -> str:
    """Encrypt as Feishu does, with pycryptodome (independent of the adapter's code)."""
    iv = os.urandom(16)
    pad = 16 - len(plaintext) % 16
    cipher = AES.new(hashlib.sha256(key.encode()).digest(), AES.MODE_CBC, iv)
    return base64.b64encode(iv + cipher.encrypt(plaintext + bytes([pad]) * pad)).decode()


def lark_sign(ts: str, nonce: str, key: str, body: bytes) -> str:
    """The documented X-Lark-Signature formula, written out independently."""
    return hashlib.sha256((ts + nonce + key).encode() + body).hexdigest()


def signed(payload: dict[str, Any] | bytes, *, key: str = ENCRYPT_KEY, ts: str | None = None,
           nonce: str | None = None, encrypt: bool = True, sign: bool = True,
           headers: dict[str, str] | None = None) -> WebhookRequest:
    """A webhook request as Feishu sends it: encrypted body, signature headers."""
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    body = json.dumps({"encrypt": lark_encrypt(key, raw)}).encode() if encrypt else raw
    hdrs = {"content-type": "application/json"}
    if sign:
        stamp = ts or str(int(NOW))
        nonce = nonce or os.urandom(8).hex()
        hdrs |= {"x-lark-request-timestamp": stamp, "x-lark-request-nonce": nonce,
                 "x-lark-signature": lark_sign(stamp, nonce, key, body)}
    hdrs |= headers or {}
    return WebhookRequest(method="POST", headers=hdrs, query={}, body=body)


def message_event(text: str = "hello", *, event_id: str = "ev-1", chat_type: str = "p2p",
                  message_type: str = "text", content: dict[str, Any] | None = None,
                  mentions: list[dict[str, Any]] | None = None, token: str = TOKEN,
                  **message: Any) -> dict[str, Any]:
    """An ``im.message.receive_v1`` event (schema 2.0), shaped as lark-oapi's models."""
    return {
        "schema": "2.0",
        "header": {"event_id": event_id, "token": token, "create_time": "1700000000123",
                   "event_type": "im.message.receive_v1", "tenant_key": "tk",
                   "app_id": APP_ID},
        "event": {
            "sender": {"sender_id": {"open_id": "ou_user", "union_id": "on_u",
                                     "user_id": "u1"},
                       "sender_type": "user", "tenant_key": "tk"},
            "message": {"message_id": "om_1", "create_time": "1700000000123",
                        "chat_id": "oc_chat", "chat_type": chat_type,
                        "message_type": message_type,
                        "content": json.dumps(content if content is not None else {"text": text}),
                        "mentions": mentions or [], **message},
        },
    }


