"""The botcore error tree.

Every error botcore raises on purpose is a :class:`BotError`. Each carries the fields a caller
needs to decide what to do (retry, refresh, give up), so that code branches on types and
fields, never on message text::

    BotError
    ├── ConfigError(key, expected)            bad or missing setting; raised at start-up
    ├── ChannelError(channel)                 anything a channel adapter reports
    │   ├── SignatureError(reason)            forged, stale or malformed webhook (→ 4xx)
    │   ├── ChannelApiError(errcode, errmsg)  the platform API answered with an error
    │   │   ├── ChannelRateLimited(retry_after)   throttled; wait that long
    │   │   └── ChannelAuthError              token expired or invalid; refresh once
    │   └── ChannelUnavailable                network error or 5xx; transient
    ├── IngressError                          the durable write failed (→ 503, platform retries)
    ├── DispatchError                         no handler, bad handler registration
    ├── FlowError(flow)                       a flow failed or is unknown
    ├── SessionError                          the session store failed
    └── KnowledgeBaseError                    (botcore.kb.errors) a knowledge-base operation
        ├── IngestError(source, reason)       one file or query could not be ingested
        ├── EmbeddingError                    the embedding model or API failed
        └── StoreError                        Qdrant refused, unreachable or locked

Each adapter subclasses these for its platform (``FeishuApiError(ChannelApiError)``...).
"""

from __future__ import annotations

__all__ = [
    "BotError",
    "ChannelApiError",
    "ChannelAuthError",
    "ChannelError",
    "ChannelRateLimited",
    "ChannelUnavailable",
    "ConfigError",
    "DispatchError",
    "FlowError",
    "IngressError",
    "SessionError",
    "SignatureError",
]


class BotError(Exception):
    """Root of every error botcore raises on purpose."""


class ConfigError(BotError):
    """A setting is missing or wrong.

    Args:
        key: dotted name of the setting, e.g. ``bots.support.app``.
        expected: what a valid value looks like.
        got: a description of what was found (never a secret value).
    """

    def __init__(self, key: str, expected: str, got: str | None = None) -> None:
        self.key = key
        self.expected = expected
        self.got = got
        msg = f"setting {key!r}: expected {expected}"
        if got is not None:
            msg += f", got {got}"
        super().__init__(msg)


class ChannelError(BotError):
    """A channel adapter failed. ``channel`` names the platform."""

    def __init__(self, message: str, *, channel: str = "") -> None:
        self.channel = channel
        super().__init__(f"[{channel}] {message}" if channel else message)


class SignatureError(ChannelError):
    """A webhook failed verification: the request is answered with ``status`` and dropped.

    Args:
        reason: short machine-friendly reason (``bad_signature``, ``stale_timestamp``...).
        status: HTTP status to answer with (400, 401, 403 or 413).
    """

    def __init__(self, reason: str, *, channel: str = "", status: int = 401) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"webhook rejected: {reason}", channel=channel)


class ChannelApiError(ChannelError):
    """The platform API answered with an error code."""

    def __init__(self, errcode: int | str, errmsg: str, *, channel: str = "") -> None:
        self.errcode = errcode
        self.errmsg = errmsg
        super().__init__(f"API error {errcode}: {errmsg}", channel=channel)


class ChannelRateLimited(ChannelApiError):
    """The platform throttled us; wait ``retry_after`` seconds before the next call."""

    def __init__(
        self, retry_after: float, *, channel: str = "", errcode: int | str = 429, errmsg: str = ""
    ) -> None:
        self.retry_after = retry_after
        super().__init__(errcode, errmsg or f"rate limited, retry after {retry_after}s",
                         channel=channel)


class ChannelAuthError(ChannelApiError):
    """The access token is expired or invalid; refresh it once and retry."""


class ChannelUnavailable(ChannelError):
    """A network error or 5xx from the platform: transient, retry with backoff."""


class IngressError(BotError):
    """The durable ingress write failed; the webhook answers 503 so that the platform retries."""


class LeaseLostError(IngressError):
    """This worker's lease on the conversation expired and another worker holds it now: the
    reply was not sent (the new holder runs the turn and answers). Nothing to do; it shows a
    worker that stalled longer than ``ingress.lease_ttl``.

    Attributes:
        conversation_key: the lease's Redis key.
        token: the fencing token this worker held.
    """

    def __init__(self, conversation_key: str, token: int) -> None:
        super().__init__(f"lease {conversation_key} (token {token}) is held by another worker: "
                         "reply not sent")
        self.conversation_key = conversation_key
        self.token = token


class DispatchError(BotError):
    """A handler could not be registered or dispatched."""


class FlowError(BotError):
    """A flow is unknown or failed. ``flow`` names it."""

    def __init__(self, message: str, *, flow: str = "") -> None:
        self.flow = flow
        super().__init__(f"flow {flow!r}: {message}" if flow else message)


class SessionError(BotError):
    """The session store failed."""
