"""Feishu callback crypto: AES-256-CBC bodies and the ``X-Lark-Signature`` check.

* Decryption: ``key = SHA-256(encrypt_key)``, ``raw = base64(encrypt)``, ``IV = raw[:16]``,
  AES-256-CBC over ``raw[16:]``, PKCS#7 with a 16-byte block (lark-oapi ``AESCipher``).
* Signature: ``sha256(timestamp + nonce + encrypt_key + raw_body).hexdigest()``, over the
  **raw** body bytes, compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from botcore.errors import SignatureError

from .errors import CHANNEL

__all__ = ["decrypt", "encrypt", "sign", "verify_signature"]

_BLOCK = 16


def _key(encrypt_key: str) -> bytes:
    return hashlib.sha256(encrypt_key.encode()).digest()


def _bad(reason: str) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=400)


def decrypt(encrypt_key: str, encrypted: str) -> bytes:
    """Decrypt the ``encrypt`` field of a callback.

    Args:
        encrypt_key: the app's Encrypt Key.
        encrypted: base64 of ``IV + ciphertext``.

    Returns:
        The plaintext bytes (a JSON document for real callbacks).

    Raises:
        SignatureError: bad base64, bad length or bad padding (status 400).

    Example:
        >>> decrypt("test key", "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=")
        b'hello world'
    """
    try:
        raw = base64.b64decode(encrypted, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("bad_base64") from None
    if len(raw) < 2 * _BLOCK or len(raw) % _BLOCK:
        raise _bad("bad_ciphertext_length")
    decryptor = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(raw[:_BLOCK])).decryptor()
    padded = decryptor.update(raw[_BLOCK:]) + decryptor.finalize()
    unpadder = padding.PKCS7(_BLOCK * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise _bad("bad_padding") from None


def encrypt(encrypt_key: str, plaintext: bytes, iv: bytes | None = None) -> str:
    """Encrypt like Feishu does (random IV): the inverse of :func:`decrypt`.

    Used by fakes and end-to-end tests that play the platform.
    """
    iv = iv if iv is not None else os.urandom(_BLOCK)
    padder = padding.PKCS7(_BLOCK * 8).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(_key(encrypt_key)), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode()


def sign(timestamp: str, nonce: str, encrypt_key: str, body: bytes) -> str:
    """``X-Lark-Signature`` of a request: hex SHA-256 of timestamp+nonce+key+raw body."""
    return hashlib.sha256((timestamp + nonce + encrypt_key).encode() + body).hexdigest()


def verify_signature(timestamp: str, nonce: str, encrypt_key: str, body: bytes,
                     signature: str) -> None:
    """Check ``X-Lark-Signature`` in constant time.

    Raises:
        SignatureError: the signature does not match (status 401).
    """
    expected = sign(timestamp, nonce, encrypt_key, body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise SignatureError("bad_signature", channel=CHANNEL, status=401)
