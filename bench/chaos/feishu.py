"""Kill chaos on the Feishu channel: the real adapter against a fake Open API.

``im.message.receive_v1`` events (schema 2.0, private chats) are encrypted with the Encrypt
Key and signed (``X-Lark-Signature`` = sha256(timestamp + nonce + key + body)) as Feishu
does, written out here independently of the adapter, and POSTed to the real route
``/webhooks/feishu/<bot>``. The workers answer through :class:`adapters.feishu.FeishuAdapter`
(a reply to the user's message, ``uuid`` = the reply's idempotency key) against
:mod:`bench.chaos.fake_feishu`, which honours ``uuid`` as Feishu documents it. A SIGKILL
inside the call leaves a created message whose id the worker never recorded; the re-run
sends the same ``uuid`` and Feishu answers with that message instead of a new one. This run
measures whether that holds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench.chaos.channel import Callback, ChannelBench
from bench.chaos.fake_common import calls_key, chat_stream, deduped_key
from bench.chaos.fake_feishu import APP_ID, APP_SECRET, PREFIX, USER_MESSAGE

__all__ = ["BENCH", "callback", "encrypt", "sign"]

VERIFICATION_TOKEN = "chaos-bench-verification-token"
ENCRYPT_KEY = "chaos-bench-encrypt-key"
BOT_OPEN_ID = "ou_chaosbenchbot"


def encrypt(key: str, plaintext: bytes) -> str:
    """AES-256-CBC with sha256(Encrypt Key) as key, a random IV in front, PKCS#7, base64."""
    iv = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(hashlib.sha256(key.encode()).digest()),
                       modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def sign(timestamp: str, nonce: str, key: str, body: bytes) -> str:
    """``X-Lark-Signature``: hex sha256 of timestamp + nonce + Encrypt Key + raw body."""
    return hashlib.sha256((timestamp + nonce + key).encode() + body).hexdigest()


def _chat(conv: int) -> str:
    return f"oc_chaos{conv}"


def event(conv: int, seq: int) -> dict[str, Any]:
    """A private-chat text message: ``"<seq> <conv>"`` from user ``conv``."""
    now = str(int(time.time() * 1000))
    return {
        "schema": "2.0",
        "header": {"event_id": f"ev-{conv}-{seq}", "token": VERIFICATION_TOKEN,
                   "create_time": now, "event_type": "im.message.receive_v1",
                   "tenant_key": "tk_chaos", "app_id": APP_ID},
        "event": {
            "sender": {"sender_id": {"open_id": f"ou_user{conv}", "union_id": f"on_u{conv}",
                                     "user_id": f"u{conv}"},
                       "sender_type": "user", "tenant_key": "tk_chaos"},
            "message": {"message_id": USER_MESSAGE.format(_chat(conv), seq + 1),
                        "create_time": now, "chat_id": _chat(conv), "chat_type": "p2p",
                        "message_type": "text",
                        "content": json.dumps({"text": f"{seq} {conv}"}), "mentions": []},
        },
    }


def callback(conv: int, seq: int) -> Callback:
    """The encrypted, signed webhook request of message ``seq`` in chat ``conv``."""
    body = json.dumps({"encrypt": encrypt(ENCRYPT_KEY, json.dumps(event(conv, seq)).encode())
                       }).encode()
    timestamp, nonce = str(int(time.time())), os.urandom(8).hex()
    return Callback(query={}, body=body, headers={
        "content-type": "application/json", "x-lark-request-timestamp": timestamp,
        "x-lark-request-nonce": nonce,
        "x-lark-signature": sign(timestamp, nonce, ENCRYPT_KEY, body)})


BENCH = ChannelBench(
    name="feishu", channel="feishu",
    bot={"app_id": APP_ID, "app_secret": APP_SECRET,
         "verification_token": VERIFICATION_TOKEN, "encrypt_key": ENCRYPT_KEY,
         "bot_open_id": BOT_OPEN_ID},
    callback=callback,
    stream=lambda conv: chat_stream(PREFIX, _chat(conv)),
    event_id=lambda conv, seq: f"msg:{USER_MESSAGE.format(_chat(conv), seq + 1)}",
    calls=calls_key(PREFIX), deduped=deduped_key(PREFIX),
    send_calls=frozenset({"create", "reply"}),
    fake="bench.chaos.fake_feishu:create_app",
)
