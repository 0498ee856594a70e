"""Crypto: the official vector, and agreement with lark-oapi's own functions."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from Crypto.Cipher import AES
from feishu_helpers import ENCRYPT_KEY, lark_encrypt, lark_sign
from lark_oapi.core.model import RawRequest
from lark_oapi.core.utils import AESCipher
from lark_oapi.event.dispatcher_handler import EventDispatcherHandler

from adapters.feishu.crypto import decrypt, encrypt, sign, verify_signature
from botcore.errors import SignatureError


def test_documented_test_key_vector() -> None:
    # platforms.md 5.4: Feishu's 接收事件 page example.
    assert decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == b"hello world"
    assert AESCipher("test key").decrypt_str(
        "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=") == "hello world"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000])
def test_decrypts_what_feishu_encrypts(size: int) -> None:
    plaintext = json.dumps({"x": "飞" * size}).encode()
    assert decrypt(ENCRYPT_KEY, lark_encrypt(ENCRYPT_KEY, plaintext)) == plaintext


def test_lark_oapi_decrypts_our_encrypt() -> None:
    token = encrypt(ENCRYPT_KEY, "你好 hello".encode())
    assert AESCipher(ENCRYPT_KEY).decrypt_str(token) == "你好 hello"


def test_signature_accepted_by_lark_oapi() -> None:
    body = b'{"encrypt":"abc"}'
    signature = sign("1700000000", "n1", ENCRYPT_KEY, body)
    assert signature == lark_sign("1700000000", "n1", ENCRYPT_KEY, body)
    request = RawRequest()
    request.headers = {"X-Lark-Request-Timestamp": "1700000000", "X-Lark-Request-Nonce": "n1",
                       "X-Lark-Signature": signature}
    request.body = body
    EventDispatcherHandler()._verify_sign(request, ENCRYPT_KEY)  # raises if it disagrees
    verify_signature("1700000000", "n1", ENCRYPT_KEY, body, signature)


@pytest.mark.parametrize("change", ["body", "nonce", "key", "signature"])
def test_signature_mismatch(change: str) -> None:
    body, nonce, key = b'{"a":1}', "n1", ENCRYPT_KEY
    good = sign("1", nonce, key, body)
    args = {"body": (b'{"a":2}', nonce, key, good), "nonce": (body, "n2", key, good),
            "key": (body, nonce, "other", good), "signature": (body, nonce, key, "0" * 64)}
    body2, nonce2, key2, sig2 = args[change]
    with pytest.raises(SignatureError) as err:
        verify_signature("1", nonce2, key2, body2, sig2)
    assert err.value.status == 401
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize(("encrypted", "reason"), [
    ("not base64!!", "bad_base64"),
    ("QUJD", "bad_ciphertext_length"),  # 3 bytes
    (base64.b64encode(b"\x00" * 40).decode(), "bad_ciphertext_length"),
])
def test_bad_ciphertext(encrypted: str, reason: str) -> None:
    with pytest.raises(SignatureError) as err:
        decrypt(ENCRYPT_KEY, encrypted)
    assert (err.value.reason, err.value.status) == (reason, 400)


def test_bad_padding() -> None:
    cipher = AES.new(hashlib.sha256(ENCRYPT_KEY.encode()).digest(), AES.MODE_CBC, b"\x01" * 16)
    token = base64.b64encode(b"\x01" * 16 + cipher.encrypt(b"x" * 15 + b"\x00")).decode()
    with pytest.raises(ValueError, match="padding"):
        AESCipher(ENCRYPT_KEY).decrypt_str(token)
    with pytest.raises(SignatureError) as err:
        decrypt(ENCRYPT_KEY, token)
    assert err.value.reason == "bad_padding"
