"""Webhook authentication, bad inputs and config validation."""

from __future__ import annotations

import pytest
from conftest import SECRET, MakeAdapter, bot_config, webhook
from tg_updates import message

from adapters.telegram import TelegramAdapter
from adapters.telegram.crypto import verify_secret_token
from botcore.channel import Accepted, AdapterDeps, Rejected
from botcore.errors import ConfigError, SignatureError


async def test_valid_secret_accepts(adapter: TelegramAdapter) -> None:
    outcome = await adapter.handle_webhook(webhook(message("hi")))
    assert isinstance(outcome, Accepted)
    assert len(outcome.messages) == 1


@pytest.mark.parametrize(("secret", "status", "reason"), [
    (None, 403, "missing_secret_token"),
    ("", 403, "missing_secret_token"),
    ("wrong-secret", 401, "bad_secret_token"),
    (SECRET + "x", 401, "bad_secret_token"),
    (SECRET[:-1], 401, "bad_secret_token"),
])
async def test_missing_or_wrong_secret_rejected(adapter: TelegramAdapter, secret: str | None,
                                                status: int, reason: str) -> None:
    outcome = await adapter.handle_webhook(webhook(message("hi"), secret=secret))
    assert outcome == Rejected(status, reason)
    assert SECRET not in outcome.reason


async def test_polling_bot_refuses_webhooks(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter(mode="polling", secret_token=None)
    outcome = await adapter.handle_webhook(webhook(message("hi"), secret="anything"))
    assert outcome == Rejected(403, "webhook_not_configured")


def test_verify_secret_uses_constant_time_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.telegram.crypto as crypto

    seen: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return a == b

    monkeypatch.setattr(crypto.hmac, "compare_digest", spy)
    with pytest.raises(SignatureError) as info:
        verify_secret_token({"x-telegram-bot-api-secret-token": "nope"}, "yes")
    assert info.value.status == 401
    assert seen == [(b"nope", b"yes")]


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe\x00", "malformed_json"),
    (b"[1, 2]", "not_an_update"),
    (b'{"message": {}}', "not_an_update"),
    (b'{"update_id": "7"}', "not_an_update"),
])
async def test_malformed_body_is_400(adapter: TelegramAdapter, body: bytes, reason: str) -> None:
    assert await adapter.handle_webhook(webhook(body)) == Rejected(400, reason)


async def test_oversized_body_is_413(adapter: TelegramAdapter) -> None:
    body = b'{"update_id": 1, "pad": "' + b"x" * (1 << 20) + b'"}'
    assert await adapter.handle_webhook(webhook(body)) == Rejected(413, "body_too_large")


async def test_get_is_405(adapter: TelegramAdapter) -> None:
    outcome = await adapter.handle_webhook(webhook(message("hi"), method="GET"))
    assert isinstance(outcome, Rejected)
    assert outcome.status == 405


@pytest.mark.parametrize("update", [
    {"update_id": 5, "poll": {"id": "1", "question": "?", "options": []}},
    {"update_id": 6, "message_reaction": {"chat": {"id": 1, "type": "private"}}},
    {"update_id": 7, "inline_query": {"id": "q", "from": {"id": 1}, "query": "x"}},
    {"update_id": 8, "future_update_kind": {"anything": True}},
    {"update_id": 9},
    {"update_id": 10, "message": {"message_id": "not-a-number"}},  # authentic, odd shape
])
async def test_unknown_update_types_are_accepted_and_ignored(
        adapter: TelegramAdapter, update: dict[str, object]) -> None:
    outcome = await adapter.handle_webhook(webhook(update))
    assert outcome == Accepted(())


# --- config -------------------------------------------------------------------------------


def _build(deps: AdapterDeps, **options: object) -> TelegramAdapter:
    return TelegramAdapter(bot_config(**options), deps)


@pytest.fixture
def deps(adapter: TelegramAdapter) -> AdapterDeps:
    return adapter.deps


@pytest.mark.parametrize(("options", "key"), [
    ({"secret_token": "has space"}, "bots.tg.secret_token"),
    ({"secret_token": "x" * 257}, "bots.tg.secret_token"),
    ({"secret_token": "ключ"}, "bots.tg.secret_token"),
    ({"secret_token": None}, "bots.tg"),
    ({"token": "not-a-token"}, "bots.tg.token"),
    ({"mode": "push"}, "bots.tg.mode"),
    ({"webhook_url": "http://insecure.example/hook"}, "bots.tg.webhook_url"),
    ({"unexpected": 1}, "bots.tg.unexpected"),
    ({"bot_username": "no"}, "bots.tg.bot_username"),
])
def test_bad_config_names_the_key(deps: AdapterDeps, options: dict[str, object],
                                  key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _build(deps, **options)
    assert info.value.key == key
    assert "has space" not in str(info.value)


def test_config_defaults(deps: AdapterDeps) -> None:
    adapter = _build(deps, bot_username="@Botcore_Bot", api_base="https://api.telegram.org")
    assert adapter.config.mode == "webhook"
    assert adapter.config.bot_username == "Botcore_Bot"
    assert adapter.config.allowed_updates == ("message", "edited_message", "callback_query",
                                              "my_chat_member")
    assert adapter.config.bot_user_id == 123456789
    assert "AAH" not in repr(adapter.config)


def test_polling_mode_needs_no_secret(deps: AdapterDeps) -> None:
    adapter = _build(deps, mode="polling", secret_token=None)
    assert adapter.config.secret_token is None
