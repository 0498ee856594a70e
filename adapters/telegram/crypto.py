"""Webhook authentication: the ``X-Telegram-Bot-Api-Secret-Token`` header.

Telegram does not sign updates; ``setWebhook(secret_token=...)`` makes it send a static secret
in every request, which is compared here in constant time. A missing header answers 403 (as
python-telegram-bot does), a wrong one 401; neither reason echoes the value received.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from botcore.errors import SignatureError

from .errors import CHANNEL

__all__ = ["SECRET_HEADER", "verify_secret_token"]

SECRET_HEADER = "x-telegram-bot-api-secret-token"


def verify_secret_token(headers: Mapping[str, str], expected: str | None) -> None:
    """Check the secret-token header (``headers`` have lower-cased names).

    Args:
        headers: the request headers.
        expected: the configured secret; None means webhooks are not set up for this bot,
            and every request is refused (fail closed).

    Raises:
        SignatureError: status 403 when the header or the configured secret is missing,
            401 when the header does not match.
    """
    if not expected:
        raise SignatureError("webhook_not_configured", channel=CHANNEL, status=403)
    received = headers.get(SECRET_HEADER)
    if not received:
        raise SignatureError("missing_secret_token", channel=CHANNEL, status=403)
    if not hmac.compare_digest(received.encode(), expected.encode()):
        raise SignatureError("bad_secret_token", channel=CHANNEL, status=401)
