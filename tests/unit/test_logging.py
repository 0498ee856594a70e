"""Log redaction: secret-looking fields and URL parameters never reach the output."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import structlog

from botcore.logging import configure_logging, get_logger, redact


def _redact(**event: Any) -> dict[str, Any]:
    return dict(redact(None, "info", dict(event)))


@pytest.mark.parametrize("field", ["secret", "app_secret", "access_token", "password",
                                   "api_key", "apikey", "signature", "msg_signature",
                                   "encrypt_key", "aes_key", "Authorization", "cookie",
                                   "TOKEN"])
async def test_secret_fields_hidden(field: str) -> None:
    assert _redact(event="calling", **{field: "s3cr3t-value"})[field] == "***"


async def test_other_fields_kept() -> None:
    event = _redact(event="turn done", bot="support", replies=2, trace_id="abc")
    assert event == {"event": "turn done", "bot": "support", "replies": 2, "trace_id": "abc"}


@pytest.mark.parametrize(("text", "expected"), [
    ("GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=abcDEF123",
     "GET https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=***"),
    ("https://api.example.com/send?access_token=tok_123&type=text",
     "https://api.example.com/send?access_token=***&type=text"),
    ("ACCESS_TOKEN=abc def", "ACCESS_TOKEN=*** def"),
    ("webhook?timestamp=1&sign=xyz%3D", "webhook?timestamp=1&sign=***"),
])
async def test_secrets_in_strings_hidden(text: str, expected: str) -> None:
    assert _redact(event="request", url=text)["url"] == expected


async def test_event_text_itself_is_scrubbed() -> None:
    assert _redact(event="failed: access_token=tok_9 rejected")["event"] == \
        "failed: access_token=*** rejected"


async def test_non_string_values_untouched() -> None:
    event = _redact(event="x", count=3, ratio=0.5, flags=None)
    assert (event["count"], event["ratio"], event["flags"]) == (3, 0.5, None)


async def test_configured_pipeline_redacts_output(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    try:
        configure_logging("INFO", json=True)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(stream))
        get_logger("test").info("token fetched", access_token="tok-SECRET-1",
                                url="https://x/?access_token=tok-SECRET-2", app_id="cli_1")
        get_logger("test").debug("hidden at INFO")
    finally:
        structlog.reset_defaults()
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert "SECRET" not in lines[0]
    assert record["access_token"] == "***"
    assert record["app_id"] == "cli_1"
    assert record["level"] == "info"


async def test_nested_mappings_redacted() -> None:
    event = _redact(event="request", headers={"Authorization": "Bearer abc", "host": "x"},
                    params={"query": {"access_token": "tok"}, "url": "/?sign=zz"})
    assert event["headers"] == {"Authorization": "***", "host": "x"}
    assert event["params"] == {"query": {"access_token": "***"}, "url": "/?sign=***"}


def test_scrub_text_hides_url_secrets_and_telegram_tokens() -> None:
    from botcore.logging import scrub_text

    text = ("POST https://api.telegram.org/bot123456:AAH-x_y/sendMessage failed; "
            "GET /cgi-bin/message/send?access_token=abc&debug=1")
    assert scrub_text(text) == ("POST https://api.telegram.org/bot***/sendMessage failed; "
                                "GET /cgi-bin/message/send?access_token=***&debug=1")
