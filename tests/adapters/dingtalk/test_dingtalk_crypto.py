"""Crypto against DingTalk's official callback vector (platforms.md 5.3) and the HMAC
formulas, computed here independently of the adapter."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import quote_plus

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from dingtalk_support import make_adapter
from redis.asyncio import Redis

from adapters.dingtalk.crypto import CallbackCrypto, app_sign, robot_sign, verify_app_sign
from botcore.channel import Challenge, Rejected, WebhookRequest
from botcore.errors import SignatureError
from botcore.keys import KeyBuilder

TOKEN = "mryue"
AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
OWNER = "ding6ccabc44d2c8d38b"
SIG = "03044561471240d4a14bb09372dfcfd4fd0e40cb"
TS = "1608001896814"
NONCE = "WL4PK6yA"
ENCRYPT = ("0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyD"
           "CYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3")


def independent_decrypt(encrypt: str) -> bytes:
    key = base64.b64decode(AES_KEY + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(encrypt)) + dec.finalize()
    plain = plain[:-plain[-1]]
    length = int.from_bytes(plain[16:20], "big")
    assert plain[20 + length:] == OWNER.encode()
    return plain[20:20 + length]


def test_official_vector_verifies_and_decrypts() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, OWNER)
    crypto.verify(SIG, TS, NONCE, ENCRYPT)
    assert crypto.decrypt(ENCRYPT) == '{"EventType":"check_url"}'
    # encrypting with the vector's random prefix gives the official ciphertext back
    assert crypto.encrypt('{"EventType":"check_url"}', b"l7Y3EcX2CU5w8av3") == ENCRYPT


def test_official_vector_tampering_is_rejected() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, OWNER)
    with pytest.raises(SignatureError) as bad_sig:
        crypto.verify(SIG.replace("0", "1", 1), TS, NONCE, ENCRYPT)
    assert bad_sig.value.reason == "bad_signature"
    with pytest.raises(SignatureError) as other_app:
        CallbackCrypto(TOKEN, AES_KEY, "dingOTHER").decrypt(ENCRYPT)
    assert other_app.value.status == 403
    with pytest.raises(SignatureError):
        crypto.decrypt("not base64!!")
    with pytest.raises(SignatureError):
        crypto.decrypt(base64.b64encode(b"x" * 32).decode())


def test_round_trip_counts_length_in_bytes() -> None:
    crypto = CallbackCrypto(TOKEN, AES_KEY, OWNER)
    message = '{"text":"中文消息 ✓"}'
    assert independent_decrypt(crypto.encrypt(message)).decode() == message


def test_app_and_robot_sign_match_the_formula() -> None:
    ts, secret = "1700000000123", "SECabc"
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    assert app_sign(ts, secret) == base64.b64encode(mac).decode()
    assert robot_sign(ts, secret) == quote_plus(base64.b64encode(mac).decode())
    verify_app_sign(ts, app_sign(ts, secret), secret, now=1700000000.0, window=3600)
    with pytest.raises(SignatureError) as stale:
        verify_app_sign(ts, app_sign(ts, secret), secret, now=1700003700.5, window=3600)
    assert stale.value.reason == "stale_timestamp"


def _check_url_request(query: dict[str, str] | None = None) -> WebhookRequest:
    q = {"msg_signature": SIG, "timestamp": TS, "nonce": NONCE, **(query or {})}
    return WebhookRequest(method="POST", headers={}, query=q,
                          body=json.dumps({"encrypt": ENCRYPT}).encode())


async def test_check_url_handshake_answers_encrypted_success(redis: Redis,
                                                             keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys, client_id=OWNER, aes_key=AES_KEY, token=TOKEN)
    adapter.clock = lambda: 1608001896.814 + 5
    outcome = await adapter.handle_webhook(_check_url_request())
    assert isinstance(outcome, Challenge)
    assert outcome.content_type == "application/json"
    reply = json.loads(outcome.body)
    parts = sorted([TOKEN, reply["timeStamp"], reply["nonce"], reply["encrypt"]])
    assert reply["msg_signature"] == hashlib.sha1("".join(parts).encode()).hexdigest()
    assert independent_decrypt(reply["encrypt"]) == b"success"
    # the same request again (DingTalk retrying the handshake) is answered again
    again = await adapter.handle_webhook(_check_url_request())
    assert isinstance(again, Challenge)


async def test_check_url_outside_window_or_unsigned_is_rejected(redis: Redis,
                                                                keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys, client_id=OWNER, aes_key=AES_KEY, token=TOKEN)
    stale = await adapter.handle_webhook(_check_url_request())  # real clock: 2014 is stale
    assert stale == Rejected(401, "stale_timestamp")
    adapter.clock = lambda: 1608001896.814
    missing = await adapter.handle_webhook(_check_url_request({"msg_signature": ""}))
    assert missing == Rejected(401, "missing_signature")
    forged = await adapter.handle_webhook(_check_url_request({"nonce": "other"}))
    assert forged == Rejected(401, "bad_signature")


async def test_encrypted_callback_without_crypto_config_is_rejected(redis: Redis,
                                                                   keys: KeyBuilder) -> None:
    adapter = make_adapter(redis, keys)
    outcome = await adapter.handle_webhook(_check_url_request())
    assert outcome == Rejected(403, "encryption_not_configured")
