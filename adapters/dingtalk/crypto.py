"""DingTalk signatures and the event-callback encryption.

* :func:`app_sign` / :func:`verify_app_sign`: the ``timestamp`` and ``sign`` headers of an
  app robot's HTTP callback: ``base64(HMAC-SHA256(key=appSecret, timestamp + "\\n" +
  appSecret))``, timestamp in ms, not URL-encoded.
* :func:`robot_sign`: the custom (group webhook) robot's ``sign`` query parameter: the same
  HMAC, URL-encoded.
* :class:`CallbackCrypto`: event-callback encryption (WeCom's scheme): ``msg_signature`` =
  SHA1 over the sorted ``[token, timestamp, nonce, encrypt]``; AES-256-CBC with key =
  b64decode(aes_key + "="), IV = key[:16], 32-byte PKCS#7; plaintext = random16 ‖ len (4
  bytes, big-endian, in **bytes**) ‖ message ‖ owner key (AppKey / corp id).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import struct
from urllib.parse import quote_plus

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from adapters.dingtalk.errors import CHANNEL
from botcore.errors import SignatureError

__all__ = ["CallbackCrypto", "app_sign", "robot_sign", "verify_app_sign"]

_BLOCK = 32


def _hmac_b64(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def app_sign(timestamp: str, app_secret: str) -> str:
    """The ``sign`` header DingTalk sends with an app robot's HTTP callback."""
    return _hmac_b64(app_secret, timestamp)


def robot_sign(timestamp: str, secret: str) -> str:
    """The URL-encoded ``sign`` parameter of a custom (group webhook) robot."""
    return quote_plus(_hmac_b64(secret, timestamp))


def _reject(reason: str, status: int = 401) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=status)


def check_timestamp(timestamp: str | None, now: float, window: float) -> int:
    """Parse a millisecond timestamp and check it is within ``window`` seconds of ``now``.

    Raises:
        SignatureError: missing, not a number, or outside the window.
    """
    if not timestamp:
        raise _reject("missing_timestamp")
    try:
        millis = int(timestamp)
    except ValueError:
        raise _reject("bad_timestamp", 400) from None
    if abs(now - millis / 1000) > window:
        raise _reject("stale_timestamp")
    return millis


def verify_app_sign(timestamp: str | None, sign: str | None, app_secret: str, *,
                    now: float, window: float) -> None:
    """Check an app robot callback's ``timestamp`` / ``sign`` headers, fail-closed.

    Raises:
        SignatureError: missing header, stale timestamp or wrong signature.
    """
    check_timestamp(timestamp, now, window)
    if not sign:
        raise _reject("missing_sign")
    expected = app_sign(str(timestamp), app_secret)
    if not hmac.compare_digest(expected.encode(), sign.encode()):
        raise _reject("bad_signature")


class CallbackCrypto:
    """Verify, decrypt and encrypt DingTalk event callbacks.

    Args:
        token: the callback token (签名 token).
        aes_key: the 43-character EncodingAESKey.
        owner_key: the trailing key in the plaintext: the app's AppKey (client_id) for
            internal apps, the corp id for the old registration, the suite key for ISVs.

    Example:
        >>> crypto = CallbackCrypto("mryue", "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
        ...                         "ding6ccabc44d2c8d38b")
    """

    def __init__(self, token: str, aes_key: str, owner_key: str) -> None:
        try:
            key = base64.b64decode(aes_key + "=", validate=True)
        except binascii.Error:
            key = b""
        if len(key) != 32:
            raise ValueError("aes_key must be 43 base64 characters (a 32-byte key)")
        self._token = token
        self._key = key
        self._owner = owner_key.encode()

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """SHA1 hex over the sorted ``[token, timestamp, nonce, encrypt]``."""
        parts = sorted([self._token, timestamp, nonce, encrypt])
        return hashlib.sha1("".join(parts).encode()).hexdigest()

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Raise SignatureError unless ``msg_signature`` matches (constant time)."""
        expected = self.signature(timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.encode()):
            raise _reject("bad_signature")

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def decrypt(self, encrypt: str) -> str:
        """Decrypt ``encrypt`` and check its trailing owner key.

        Raises:
            SignatureError: not base64, bad padding, bad length or another app's message.
        """
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise _reject("bad_ciphertext", 400) from None
        if not data or len(data) % 16:
            raise _reject("bad_ciphertext", 400)
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= _BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise _reject("bad_padding", 400)
        plain = plain[:-pad]
        if len(plain) < 20:
            raise _reject("bad_plaintext", 400)
        (length,) = struct.unpack(">I", plain[16:20])
        message, owner = plain[20:20 + length], plain[20 + length:]
        if len(message) != length or not hmac.compare_digest(owner, self._owner):
            raise _reject("wrong_owner_key", 403)
        try:
            return message.decode()
        except UnicodeDecodeError:
            raise _reject("bad_plaintext", 400) from None

    def encrypt(self, message: str, random16: bytes | None = None) -> str:
        """Encrypt ``message`` (base64 out); ``random16`` is injectable for tests."""
        body = message.encode()
        prefix = random16 if random16 is not None else secrets.token_bytes(16)
        plain = prefix + struct.pack(">I", len(body)) + body + self._owner
        pad = _BLOCK - len(plain) % _BLOCK
        plain += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()

    def success_reply(self, timestamp: str, nonce: str | None = None,
                      random16: bytes | None = None) -> str:
        """The JSON body DingTalk expects back: ``"success"`` encrypted and signed."""
        nonce = nonce or secrets.token_hex(4)
        encrypt = self.encrypt("success", random16)
        return json.dumps({
            "msg_signature": self.signature(timestamp, nonce, encrypt),
            "timeStamp": timestamp, "nonce": nonce, "encrypt": encrypt,
        })
