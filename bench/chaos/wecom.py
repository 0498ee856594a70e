"""Kill chaos on the WeCom (企业微信) self-built app channel: the real adapter, a fake API.

Text messages from members are encrypted and signed as WeCom does (WXBizMsgCrypt: AES-256-CBC
with the EncodingAESKey, IV = its first 16 bytes, ``random(16) + len + msg + CorpID``,
PKCS#7 to 32 bytes; ``msg_signature`` = sha1 of the sorted token, timestamp, nonce and
ciphertext), written out here independently of the adapter, and POSTed as the XML envelope
to the real route ``/webhooks/wecom/<bot>``. The workers answer through
:class:`adapters.wecom.WeComAdapter` (``message/send``, each part through the delivery
ledger) against :mod:`bench.chaos.fake_wecom`. ``message/send`` has no idempotency key: a
SIGKILL inside the call leaves a delivered message the re-run sends again. This run
measures how often.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import time

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench.chaos.channel import Callback, ChannelBench
from bench.chaos.fake_common import calls_key, chat_stream, deduped_key
from bench.chaos.fake_wecom import AGENT_ID, CORP_ID, PREFIX, SECRET, SEND

__all__ = ["BENCH", "callback", "encrypt", "signature"]

TOKEN = "ChaosBenchToken"
ENCODING_AES_KEY = "ChaosBench0123456789abcdefghijklmnopqrstuvw"  # 43 of [A-Za-z0-9]


def encrypt(aes_key: str, receive_id: str, message: bytes) -> str:
    """WXBizMsgCrypt encryption of ``message`` for ``receive_id`` (the CorpID)."""
    key = base64.b64decode(aes_key + "=")
    plain = os.urandom(16) + struct.pack(">I", len(message)) + message + receive_id.encode()
    padder = padding.PKCS7(256).padder()  # WeCom pads to 32-byte blocks
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """``msg_signature``: hex sha1 of the four values sorted and joined."""
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypted])).encode()
                        ).hexdigest()


def _user(conv: int) -> str:
    return f"chaosuser{conv}"


def _msg_id(conv: int, seq: int) -> int:
    return conv * 1_000_000 + seq + 1


def message_xml(conv: int, seq: int) -> str:
    """The decrypted callback: text ``"<seq> <conv>"`` from member ``conv`` to the app."""
    return (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{_user(conv)}]]></FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{seq} {conv}]]></Content><MsgId>{_msg_id(conv, seq)}</MsgId>"
            f"<AgentID>{AGENT_ID}</AgentID></xml>")


def callback(conv: int, seq: int) -> Callback:
    """The encrypted, signed callback of message ``seq`` from member ``conv``."""
    encrypted = encrypt(ENCODING_AES_KEY, CORP_ID, message_xml(conv, seq).encode())
    timestamp, nonce = str(int(time.time())), str(int.from_bytes(os.urandom(4), "big"))
    body = (f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA["
            f"{encrypted}]]></Encrypt><AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>")
    return Callback(query={"msg_signature": signature(TOKEN, timestamp, nonce, encrypted),
                           "timestamp": timestamp, "nonce": nonce},
                    headers={"content-type": "text/xml"}, body=body.encode())


BENCH = ChannelBench(
    name="wecom", channel="wecom",
    bot={"corp_id": CORP_ID, "agent_id": AGENT_ID, "secret": SECRET, "token": TOKEN,
         "encoding_aes_key": ENCODING_AES_KEY},
    callback=callback,
    stream=lambda conv: chat_stream(PREFIX, _user(conv)),
    event_id=lambda conv, seq: f"{AGENT_ID}:{_user(conv)}:{_msg_id(conv, seq)}",
    calls=calls_key(PREFIX), deduped=deduped_key(PREFIX),
    send_calls=frozenset({SEND}),
    fake="bench.chaos.fake_wecom:create_app",
)
