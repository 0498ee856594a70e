"""Logging: structlog on top of the standard library, with secrets redacted.

Log event ids, hashes, lengths and outcomes; never message text, tokens, signatures or
bodies (reliability.md 5.3). The redaction processor is a safety net, not a licence.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "get_logger", "redact", "scrub_text"]

_SECRET_FIELDS = re.compile(r"(secret|token|password|api_key|apikey|signature|sign|aes|"
                            r"encrypt_key|authorization|cookie)", re.IGNORECASE)
_SECRET_IN_TEXT = re.compile(r"((?:access_token|corpsecret|secret|key|token|sign)=)[^&\s]+",
                             re.IGNORECASE)
#: Telegram puts the bot token in the URL path: https://api.telegram.org/bot<id>:<secret>/...
_BOT_TOKEN_IN_PATH = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")


def scrub_text(text: str) -> str:
    """``text`` with secret-looking URL parameters and Telegram bot tokens hidden (for
    exception messages that end up in logs or dead-letter records)."""
    return _BOT_TOKEN_IN_PATH.sub("/bot***", _SECRET_IN_TEXT.sub(r"\1***", text))


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: hide values of secret-looking fields and URL parameters."""
    for name, value in list(event.items()):
        if name != "event" and _SECRET_FIELDS.search(name):
            event[name] = "***"
        else:
            event[name] = _scrub(value, depth=3)
    return event


def _scrub(value: Any, depth: int) -> Any:
    """Redact strings, and secret-looking keys of nested dicts (``headers={...}``)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict) and depth > 0:
        return {key: "***" if isinstance(key, str) and _SECRET_FIELDS.search(key)
                else _scrub(item, depth - 1) for key, item in value.items()}
    return value


def configure_logging(level: str = "INFO", json: bool = False) -> None:
    """Configure structlog and the standard library once, at process start."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    # httpx logs every request URL at INFO, and platform URLs carry access_token=... :
    # keep those loggers at WARNING whatever the level.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: Any = (structlog.processors.JSONRenderer() if json
                     else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    """A structlog logger named ``name``."""
    return structlog.get_logger(name)
