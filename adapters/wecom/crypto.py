"""WXBizMsgCrypt: WeCom's callback signature and AES envelope (platforms.md 1.1).

* ``msg_signature`` = lowercase hex SHA1 of the sorted, concatenated
  ``[token, timestamp, nonce, ciphertext]``.
* AES-256-CBC, key = ``b64decode(EncodingAESKey + "=")``, IV = key[:16], PKCS#7 to a
  multiple of **32** bytes.
* Plaintext = ``random(16) ‖ len(msg) (4 bytes, big-endian) ‖ msg ‖ receive_id``; the
  receive id is the CorpID for self-built apps and ``""`` for the AI bot.

Every failure raises :class:`~botcore.errors.SignatureError` with the HTTP status to answer:
401 for signatures, 400 for malformed input, 403 for a message meant for another receiver.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import struct
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from botcore.errors import SignatureError

from .errors import CHANNEL

__all__ = ["BLOCK_SIZE", "WXBizMsgCrypt", "valid_encoding_aes_key"]

BLOCK_SIZE = 32
_AES_KEY = re.compile(r"^[A-Za-z0-9]{43}$")


def valid_encoding_aes_key(value: str) -> bool:
    """True for a 43-character EncodingAESKey of ``[A-Za-z0-9]`` that decodes to 32 bytes."""
    if not _AES_KEY.match(value):
        return False
    try:
        return len(base64.b64decode(value + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _reject(reason: str, status: int) -> SignatureError:
    return SignatureError(reason, channel=CHANNEL, status=status)


class WXBizMsgCrypt:
    """Sign, verify, encrypt and decrypt WeCom callback payloads.

    Args:
        token: the callback Token from the admin console.
        encoding_aes_key: the 43-character EncodingAESKey.
        receive_id: the CorpID (self-built app) or ``""`` (AI bot).

    Example:
        >>> c = WXBizMsgCrypt("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "corp")
        >>> c.decrypt(c.encrypt("hi"))
        'hi'
    """

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        if not valid_encoding_aes_key(encoding_aes_key):
            raise ValueError("EncodingAESKey must be 43 characters of [A-Za-z0-9]")
        self._token = token
        self._key = base64.b64decode(encoding_aes_key + "=")
        self.receive_id = receive_id

    def signature(self, timestamp: str, nonce: str, encrypt: str) -> str:
        """The ``msg_signature`` WeCom computes for these values."""
        joined = "".join(sorted([self._token, timestamp, nonce, encrypt]))
        return hashlib.sha1(joined.encode("utf-8")).hexdigest()

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> None:
        """Check ``msg_signature`` in constant time.

        Raises:
            SignatureError: 401 ``bad_signature``.
        """
        expected = self.signature(timestamp, nonce, encrypt).encode()
        if not hmac.compare_digest(expected, msg_signature.encode("utf-8", "replace")):
            raise _reject("bad_signature", 401)

    def _cipher(self) -> Cipher[modes.CBC]:
        return Cipher(algorithms.AES(self._key), modes.CBC(self._key[:16]))

    def decrypt(self, encrypt: str) -> str:
        """Decrypt a base64 ciphertext and check its receive id.

        Raises:
            SignatureError: 400 ``bad_base64`` / ``bad_ciphertext`` / ``bad_padding`` /
                ``bad_length`` / ``bad_encoding``; 403 ``wrong_receiver``.
        """
        try:
            data = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError):
            raise _reject("bad_base64", 400) from None
        if not data or len(data) % 16:
            raise _reject("bad_ciphertext", 400)
        decryptor = self._cipher().decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK_SIZE or plain[-pad:] != bytes([pad]) * pad:
            raise _reject("bad_padding", 400)
        content = plain[16:-pad]
        if len(content) < 4:
            raise _reject("bad_length", 400)
        (length,) = struct.unpack(">I", content[:4])
        if length > len(content) - 4:
            raise _reject("bad_length", 400)
        message, receiver = content[4 : 4 + length], content[4 + length :]
        if not hmac.compare_digest(receiver, self.receive_id.encode("utf-8")):
            raise _reject("wrong_receiver", 403)
        try:
            return message.decode("utf-8")
        except UnicodeDecodeError:
            raise _reject("bad_encoding", 400) from None

    def encrypt(self, plaintext: str, random16: bytes | None = None) -> str:
        """Encrypt ``plaintext`` for this receive id; returns base64 text.

        Args:
            plaintext: the XML or JSON message.
            random16: the 16 random prefix bytes (tests pass fixed ones).
        """
        prefix = os.urandom(16) if random16 is None else random16
        if len(prefix) != 16:
            raise ValueError("random16 must be 16 bytes")
        message = plaintext.encode("utf-8")
        body = prefix + struct.pack(">I", len(message)) + message + self.receive_id.encode()
        pad = BLOCK_SIZE - len(body) % BLOCK_SIZE
        body += bytes([pad]) * pad
        encryptor = self._cipher().encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")

    def seal_json(self, payload: dict[str, Any], timestamp: str, nonce: str) -> str:
        """An encrypted JSON reply (AI bot passive reply): encrypt, msgsignature, timestamp,
        nonce, as Tencent's ``WXBizJsonMsgCrypt`` template builds it."""
        encrypt = self.encrypt(json.dumps(payload, ensure_ascii=False, separators=(",", ":")))
        return json.dumps({
            "encrypt": encrypt,
            "msgsignature": self.signature(timestamp, nonce, encrypt),
            "timestamp": int(timestamp),
            "nonce": nonce,
        })
