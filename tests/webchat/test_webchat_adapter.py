"""WebChatAdapter.handle_webhook: parsing, and every rejection (no Redis needed)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from botcore.channel import Accepted, AdapterDeps, ChannelAdapter, Rejected, WebhookRequest
from botcore.errors import ConfigError
from botcore.keys import KeyBuilder
from botcore.settings import BotConfig
from botcore.webchat import MAX_BODY_BYTES, WebChatAdapter, web_conversation

GOOD = {"conversation_id": "conv_1-A", "user_id": "u1", "text": "hello **there**",
        "client_msg_id": "m-123"}


@pytest.fixture
async def deps(redis: Redis) -> AsyncIterator[AdapterDeps]:
    """Clients that handle_webhook never uses (no I/O before the ack)."""
    async with httpx.AsyncClient() as http:
        yield AdapterDeps(redis=redis, http=http, keys=KeyBuilder())


def adapter(deps: AdapterDeps, **options: Any) -> WebChatAdapter:
    bot = BotConfig(id="demo", channel="web", app="examples.none:app", **options)
    return WebChatAdapter(bot, deps)


def post(body: Any, headers: dict[str, str] | None = None, method: str = "POST") -> WebhookRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WebhookRequest(method=method, headers=headers or {}, query={}, body=raw)


async def test_valid_post_becomes_one_private_mentioned_message(deps: AdapterDeps) -> None:
    web = adapter(deps)
    web.clock = lambda: 1_700_000_000.0
    outcome = await web.handle_webhook(post({**GOOD, "user_name": "Ann"}))
    assert isinstance(outcome, Accepted)
    assert outcome.content_type == "application/json"
    assert json.loads(outcome.ack_body) == {"ok": True, "conversation_id": "conv_1-A",
                                            "client_msg_id": "m-123"}
    (msg,) = outcome.messages
    assert msg.channel == "web"
    assert msg.bot_id == "demo"
    assert msg.conversation.chat_id == "conv_1-A"
    assert msg.conversation.id == "web:demo:conv_1-A"
    assert msg.chat_type == "private"
    assert msg.mentioned is True
    assert msg.event_id == "m-123"
    assert msg.dedupe_key == "web:demo:m-123"
    assert msg.sender.id == "u1"
    assert msg.sender.name == "Ann"
    assert msg.text == "hello **there**"
    assert msg.timestamp == 1_700_000_000.0
    assert msg.platform == {"conversation_id": "conv_1-A"}
    json.dumps(msg.model_dump(mode="json"))  # crosses the queue as JSON


async def test_a_retried_post_has_the_same_dedupe_key(deps: AdapterDeps) -> None:
    web = adapter(deps)
    first = await web.handle_webhook(post(GOOD))
    again = await web.handle_webhook(post(GOOD))
    assert isinstance(first, Accepted)
    assert isinstance(again, Accepted)
    assert first.messages[0].dedupe_key == again.messages[0].dedupe_key


@pytest.mark.parametrize(("change", "field"), [
    ({"conversation_id": "has space"}, "conversation_id"),
    ({"conversation_id": "x" * 129}, "conversation_id"),
    ({"conversation_id": ""}, "conversation_id"),
    ({"conversation_id": 12}, "conversation_id"),
    ({"user_id": None}, "user_id"),
    ({"text": ""}, "text"),
    ({"text": "   \n"}, "text"),
    ({"text": "x" * 8001}, "text"),
    ({"text": ["hi"]}, "text"),
    ({"client_msg_id": ""}, "client_msg_id"),
    ({"user_name": 5}, "user_name"),
])
async def test_bad_fields_are_400_naming_the_field(deps: AdapterDeps, change: dict[str, Any],
                                                   field: str) -> None:
    outcome = await adapter(deps).handle_webhook(post({**GOOD, **change}))
    assert isinstance(outcome, Rejected)
    assert outcome.status == 400
    assert f"'{field}'" in outcome.reason


@pytest.mark.parametrize("missing", ["conversation_id", "user_id", "text", "client_msg_id"])
async def test_missing_fields_are_400(deps: AdapterDeps, missing: str) -> None:
    body = {k: v for k, v in GOOD.items() if k != missing}
    outcome = await adapter(deps).handle_webhook(post(body))
    assert outcome == Rejected(400, f"invalid field '{missing}': Field required")


async def test_text_of_exactly_8000_chars_is_accepted(deps: AdapterDeps) -> None:
    outcome = await adapter(deps).handle_webhook(post({**GOOD, "text": "字" * 8000}))
    assert isinstance(outcome, Accepted)


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not valid JSON"),
    (b"\xff\xfe", "body is not valid JSON"),
    (b"[1, 2]", "body must be a JSON object"),
    (b"", "body is not valid JSON"),
])
async def test_malformed_bodies_are_400(deps: AdapterDeps, body: bytes, reason: str) -> None:
    assert await adapter(deps).handle_webhook(post(body)) == Rejected(400, reason)


async def test_body_over_64_kib_is_413_before_parsing(deps: AdapterDeps) -> None:
    big = b"{" + b" " * MAX_BODY_BYTES + b"}"
    outcome = await adapter(deps).handle_webhook(post(big))
    assert isinstance(outcome, Rejected)
    assert outcome.status == 413


async def test_get_is_405(deps: AdapterDeps) -> None:
    outcome = await adapter(deps).handle_webhook(post(b"", method="GET"))
    assert isinstance(outcome, Rejected)
    assert outcome.status == 405


@pytest.mark.parametrize("header", [None, "", "wrong", "s3cret-ke", "s3cret-key "])
async def test_wrong_or_missing_key_is_401(deps: AdapterDeps, header: str | None) -> None:
    web = adapter(deps, access_key="s3cret-key")
    headers = {} if header is None else {"x-botcore-key": header}
    outcome = await web.handle_webhook(post(GOOD, headers))
    assert isinstance(outcome, Rejected)
    assert outcome.status == 401
    assert "s3cret" not in outcome.reason
    assert web.key_required


async def test_right_key_is_accepted(deps: AdapterDeps) -> None:
    web = adapter(deps, access_key="s3cret-key")
    outcome = await web.handle_webhook(post(GOOD, {"x-botcore-key": "s3cret-key"}))
    assert isinstance(outcome, Accepted)
    assert web.check_key("s3cret-key")
    assert not web.check_key(None)
    assert adapter(deps).check_key(None)  # no key configured: anyone


async def test_the_key_is_checked_before_the_body(deps: AdapterDeps) -> None:
    web = adapter(deps, access_key="k")
    outcome = await web.handle_webhook(post(b"garbage"))
    assert isinstance(outcome, Rejected)
    assert outcome.status == 401


@pytest.mark.parametrize(("origin", "allowed", "status"), [
    ("http://evil.example", [], 403),
    ("http://127.0.0.1:8000", [], None),                 # the page's own origin
    ("https://app.example.com", ["https://app.example.com/"], None),
    ("https://other.example.com", ["https://app.example.com"], 403),
    ("https://anything.example", ["*"], None),
])
async def test_origin_check(deps: AdapterDeps, origin: str, allowed: list[str],
                            status: int | None) -> None:
    web = adapter(deps, allowed_origins=allowed)
    headers = {"origin": origin, "host": "127.0.0.1:8000"}
    outcome = await web.handle_webhook(post(GOOD, headers))
    if status is None:
        assert isinstance(outcome, Accepted)
    else:
        assert outcome == Rejected(403, "origin not allowed (see allowed_origins)")


@pytest.mark.parametrize(("options", "key"), [
    ({"acess_key": "typo"}, "bots.demo.acess_key"),
    ({"history_limit": 0}, "bots.demo.history_limit"),
    ({"allowed_origins": "https://x"}, "bots.demo.allowed_origins"),
])
def test_bad_options_raise_config_error_naming_the_key(deps: AdapterDeps,
                                                       options: dict[str, Any],
                                                       key: str) -> None:
    with pytest.raises(ConfigError) as info:
        adapter(deps, **options)
    assert info.value.key == key


async def test_contract_shape(deps: AdapterDeps) -> None:
    web = adapter(deps, history_limit=50)
    assert isinstance(web, ChannelAdapter)
    assert WebChatAdapter.channel == "web"
    assert web.config.history_limit == 50
    assert web.outbox_key(web_conversation("demo", "c1")) == "botcore:webout:{web:demo:c1}"
    await web.startup()
    await web.shutdown()


async def test_the_message_limit_travels_with_the_outcome(deps: AdapterDeps) -> None:
    outcome = await adapter(deps, messages_per_minute=7).handle_webhook(post(GOOD))
    assert isinstance(outcome, Accepted)
    assert outcome.limit_per_minute == 7  # the ingress enforces it inside the durable write
    default = await adapter(deps).handle_webhook(post(GOOD))
    assert isinstance(default, Accepted)
    assert default.limit_per_minute == 20
