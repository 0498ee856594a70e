"""The command line: version, help of every command, worker without Redis, inbox commands.

These tests are synchronous on purpose: the commands call ``asyncio.run`` themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import typer
from typer.testing import CliRunner, Result

from botcore import __version__
from botcore.cli import build_cli
from botcore.ingress.inbox import Envelope
from botcore.keys import KeyBuilder
from botcore.testing import make_inbound

PREFIX = "clitest"
KEYS = KeyBuilder(prefix=PREFIX)


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no botcore.toml here
    for name in ("BOTCORE_CONFIG", "BOTCORE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOTCORE_KEY_PREFIX", PREFIX)


@pytest.fixture
def cli() -> typer.Typer:
    return build_cli()


@pytest.fixture
def sync_redis(clean_redis: str,
               monkeypatch: pytest.MonkeyPatch) -> Iterator[redis_sync.Redis]:
    monkeypatch.setenv("BOTCORE_REDIS_URL", clean_redis)
    client = redis_sync.Redis.from_url(clean_redis)
    yield client
    client.close()


def _invoke(cli: typer.Typer, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under a (typer-vendored) click group."""
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if hasattr(command, "commands"):
            found += _commands(command, (*prefix, name))
    return found


def test_version(cli: typer.Typer) -> None:
    result = _invoke(cli, "--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"botcore {__version__}"


def test_no_args_shows_help(cli: typer.Typer) -> None:
    result = _invoke(cli)
    assert "serve" in result.output
    assert "worker" in result.output


def test_help_of_every_command(cli: typer.Typer) -> None:
    root = typer.main.get_command(cli)
    commands = _commands(root)
    names = {" ".join(c) for c in commands}
    assert {"serve", "worker", "chat", "inbox", "inbox stats", "inbox dead-letters",
            "inbox replay"} <= names
    for command in commands:
        result = _invoke(cli, *command, "--help")
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output, command


def test_worker_without_redis_url_exits_2(cli: typer.Typer) -> None:
    result = _invoke(cli, "worker")
    assert result.exit_code == 2
    assert "worker needs redis_url" in result.output
    assert "BOTCORE_REDIS_URL" in result.output


def test_bad_config_exits_2(cli: typer.Typer, tmp_path: Path) -> None:
    result = _invoke(cli, "inbox", "stats", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "configuration error" in result.output


def test_inbox_stats_without_redis_url_exits_2(cli: typer.Typer) -> None:
    result = _invoke(cli, "inbox", "stats")
    assert result.exit_code == 2
    assert "redis_url" in result.output


def _push(client: redis_sync.Redis, text: str, conv: str = "web:bot:c1") -> Envelope:
    envelope = Envelope.wrap(make_inbound(text, chat_id=conv.split(":")[2]))
    client.rpush(KEYS.inbox(conv), envelope.model_dump_json())
    client.sadd(KEYS.dirty(), conv)
    return envelope


def _dead(client: redis_sync.Redis, envelope: Envelope, conv: str = "web:bot:c1") -> None:
    client.rpush(KEYS.dead_letters(), json.dumps({
        "conversation_id": conv, "error": "RuntimeError: boom", "attempts": 3,
        "failed_at": 0.0, "entry": json.loads(envelope.model_dump_json())}))


def test_inbox_stats(cli: typer.Typer, sync_redis: redis_sync.Redis) -> None:
    _push(sync_redis, "a")
    _push(sync_redis, "b")
    _dead(sync_redis, Envelope.wrap(make_inbound("x")))
    result = _invoke(cli, "inbox", "stats")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["dead_letters"] == 1
    assert stats["bots"]["web:bot"]["depth"] == 2
    assert stats["bots"]["web:bot"]["conversations"] == 1


def test_dead_letters_and_replay(cli: typer.Typer, sync_redis: redis_sync.Redis) -> None:
    result = _invoke(cli, "inbox", "dead-letters")
    assert result.exit_code == 0
    assert "no dead letters" in result.output
    envelope = Envelope.wrap(make_inbound("failed one"))
    _dead(sync_redis, envelope)
    result = _invoke(cli, "inbox", "dead-letters")
    assert result.exit_code == 0
    assert envelope.id in result.output
    assert "attempts=3" in result.output
    assert "RuntimeError: boom" in result.output
    result = _invoke(cli, "inbox", "replay", envelope.id)
    assert result.exit_code == 0, result.output
    assert f"replayed {envelope.id}" in result.output
    assert sync_redis.llen(KEYS.dead_letters()) == 0
    back = Envelope.model_validate_json(sync_redis.lindex(KEYS.inbox("web:bot:c1"), 0))
    assert back.id == envelope.id
    result = _invoke(cli, "inbox", "replay", envelope.id)
    assert result.exit_code == 1
    assert "no dead letter" in result.output


def test_dead_letters_lists_an_unreadable_entry(cli: typer.Typer,
                                                sync_redis: redis_sync.Redis) -> None:
    sync_redis.rpush(KEYS.dead_letters(), json.dumps({
        "conversation_id": "web:bot:c1", "error": "unreadable entry: ...", "attempts": 0,
        "failed_at": 0.0, "entry": {"unreadable": "not json"}}))
    result = _invoke(cli, "inbox", "dead-letters")
    assert result.exit_code == 0, result.output
    assert "unreadable entry" in result.output
