"""Helpers for the WeCom tests: sign and encrypt callbacks the way WeCom does."""

from __future__ import annotations

import json
from typing import Any

from adapters.wecom import WXBizMsgCrypt
from botcore.channel import WebhookRequest
from botcore.settings import BotConfig

API_BASE = "http://fake-wecom"
# Official configuration of platforms.md 5.1 / 5.2.
VEC_CORP = "wx5823bf96d3bd56c7"
VEC_TOKEN = "QDG6eK"
VEC_AES = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
# Official vectors of platforms.md 5.1 (URL verification) and 5.2 (message push).
VEC_ECHOSTR = ("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZX"
               "vnaqQ==")
VEC_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Qczc"
    "dCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjv"
    "d4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnv"
    "w2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22"
    "Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2"
    "uyPIGHBZZIs2pDBS8R07+qN+E7Q==")
VEC_BODY = (f"<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA["
            f"{VEC_ENCRYPT}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>").encode()
VEC_POST_QUERY = {"msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
                  "timestamp": "1409659813", "nonce": "1372623149"}
# Our own test keys (43 chars of [A-Za-z0-9]).
AIBOT_TOKEN = "aibotToken123"
AIBOT_AES = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
OTHER_AES = "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut"


def app_options(**over: Any) -> dict[str, Any]:
    """Options of an app-mode bot using the official vector configuration."""
    from fake_wecom import SECRET

    return {"corp_id": VEC_CORP, "agent_id": 1000002, "secret": SECRET, "token": VEC_TOKEN,
            "encoding_aes_key": VEC_AES, "api_base": API_BASE, **over}


def aibot_options(**over: Any) -> dict[str, Any]:
    """Options of an AI bot."""
    return {"mode": "aibot", "aibot_token": AIBOT_TOKEN, "aibot_encoding_aes_key": AIBOT_AES,
            "api_base": API_BASE, **over}


def bot(options: dict[str, Any], bot_id: str = "wc") -> BotConfig:
    """A ``[bots.<id>]`` table for the wecom channel."""
    return BotConfig(id=bot_id, channel="wecom", app="examples.echo:app", **options)


def app_xml(msg_type: str, fields: str = "", *, user: str = "zhangsan", ts: int = 1409659813,
            msg_id: str | None = "1234567890123456", agent: int = 1000002) -> str:
    """A decrypted app callback."""
    msg = f"<MsgId>{msg_id}</MsgId>" if msg_id else ""
    return (f"<xml><ToUserName><![CDATA[{VEC_CORP}]]></ToUserName>"
            f"<FromUserName><![CDATA[{user}]]></FromUserName><CreateTime>{ts}</CreateTime>"
            f"<MsgType><![CDATA[{msg_type}]]></MsgType>{fields}{msg}"
            f"<AgentID>{agent}</AgentID></xml>")


def signed_post(crypt: WXBizMsgCrypt, encrypt: str, ts: str, nonce: str = "1372623149",
                *, json_body: bool = False) -> WebhookRequest:
    """A POST callback carrying ``encrypt``, signed with ``crypt``'s token."""
    if json_body:
        body = json.dumps({"encrypt": encrypt}).encode()
    else:
        body = (f"<xml><ToUserName><![CDATA[{VEC_CORP}]]></ToUserName><Encrypt><![CDATA["
                f"{encrypt}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>").encode()
    query = {"msg_signature": crypt.signature(ts, nonce, encrypt), "timestamp": ts,
             "nonce": nonce}
    return WebhookRequest(method="POST", headers={}, query=query, body=body)


def decrypt_reply(crypt: WXBizMsgCrypt, body: bytes | str) -> dict[str, Any]:
    """Check and open an encrypted AI bot reply."""
    envelope = json.loads(body)
    crypt.verify(envelope["msgsignature"], str(envelope["timestamp"]), envelope["nonce"],
                 envelope["encrypt"])
    result: dict[str, Any] = json.loads(crypt.decrypt(envelope["encrypt"]))
    return result
