"""deploy/docker-compose.yml starts as shipped: Redis takes the password the services use,
the mounted botcore.toml is in the repository and loads, and grace periods cover the
worker's shutdown grace."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from botcore.runtime import load_bot_app
from botcore.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_VAR = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def _interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:?msg}``, ``${VAR:-default}`` from ``env`` (strict)."""
    if isinstance(value, str):
        return _VAR.sub(lambda m: env[m.group(1)], value)
    if isinstance(value, list):
        return [_interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate(item, env) for key, item in value.items()}
    return value


def _env_example() -> dict[str, str]:
    lines = (DEPLOY / ".env.example").read_text("utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    raw = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text("utf-8"))
    parsed: dict[str, Any] = _interpolate(raw, _env_example())
    return parsed


def _redis_password(service: dict[str, Any]) -> str | None:
    command = [str(part) for part in service["command"]]
    if "--requirepass" in command:
        return command[command.index("--requirepass") + 1]
    return None


def test_redis_accepts_the_other_containers(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = [str(part) for part in redis["command"]]
    password = _redis_password(redis)
    protected_off = "--protected-mode" in command and \
        command[command.index("--protected-mode") + 1] == "no"
    assert password or protected_off
    for name in ("api", "worker"):
        env = compose["services"][name]["environment"]
        url = urlsplit(env["BOTCORE_REDIS_URL"])
        assert url.scheme == "redis"
        assert url.hostname == "redis"
        assert "redis" in compose["services"]
        assert url.password == password


def test_the_password_comes_from_the_environment_only() -> None:
    text = (DEPLOY / "docker-compose.yml").read_text("utf-8")
    assert "${REDIS_PASSWORD:?" in text  # no default: compose refuses to start without one
    assert "REDIS_PASSWORD" in _env_example()
    tracked = subprocess.run(["git", "ls-files", "deploy/.env"], cwd=DEPLOY.parent,
                             capture_output=True, text=True, check=True).stdout
    assert tracked.strip() == ""
    assert ".env" in (DEPLOY / ".gitignore").read_text("utf-8").split()


def test_mounted_config_is_shipped_and_loads(compose: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        service = compose["services"][name]
        mounts = [str(volume).split(":") for volume in service["volumes"]]
        target = service["environment"]["BOTCORE_CONFIG"]
        sources = [source for source, dest, *_ in mounts if dest == target]
        assert sources == ["./botcore.toml"]
        path = DEPLOY / sources[0]
        assert path.is_file()
        settings = load_settings(path)
        assert settings.bots, "the shipped config runs at least one bot"
        for bot in settings.bots.values():
            load_bot_app(bot)  # importable in the image (examples/ is copied)
        assert settings.bots["support"].channel == "web"


def test_grace_periods_cover_the_worker_shutdown_grace(compose: dict[str, Any]) -> None:
    grace = load_settings(DEPLOY / "botcore.toml").worker.shutdown_grace
    assert grace >= Settings().worker.shutdown_grace
    stop = str(compose["services"]["worker"]["stop_grace_period"])
    assert stop.endswith("s")
    assert float(stop[:-1]) > grace
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "botcore.yaml").read_text("utf-8")))
    worker = next(d for d in docs if d["metadata"]["name"] == "botcore-worker")
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace


def test_k8s_readiness_does_not_wait_for_workers() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "k8s" / "botcore.yaml").read_text("utf-8")))
    api = next(d for d in docs if d["metadata"]["name"] == "botcore-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"  # not ?workers=1
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
