"""``botcore worker`` refuses a bad config before it consumes or writes a heartbeat."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_sync

REPO = Path(__file__).resolve().parents[2]
SECRET = "999999:DO-NOT-ECHO-THIS-SECRET"


def _worker(tmp_path: Path, redis_url: str, bots: str) -> subprocess.Popen[str]:
    (tmp_path / "botcore.toml").write_text(f'key_prefix = "cfgcheck"\n{bots}', "utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "BOTCORE_REDIS_URL": redis_url,
           "BOTCORE_CONFIG": str(tmp_path / "botcore.toml")}
    return subprocess.Popen([sys.executable, "-m", "botcore", "worker", "--concurrency", "1"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _heartbeats(redis_url: str) -> list[bytes]:
    client = redis_sync.Redis.from_url(redis_url)
    try:
        return list(client.scan_iter(match="cfgcheck:worker*"))
    finally:
        client.close()


@pytest.mark.parametrize(("bots", "key"), [
    ('[bots.support]\nchannel = "web"\napp = "no_such_module_xyz:app"\n', "bots.support.app"),
    ('[bots.tg]\nchannel = "telegram"\napp = "examples.support_bot:app"\n'
     f'bot_username = "demo_bot"\nsecret_token = "{SECRET}"\n', "bots.tg.token"),
    ('[bots.tg]\nchannel = "telegram"\napp = "examples.support_bot:app"\n'
     f'token = "{SECRET}"\nbot_username = "demo_bot"\ntokn = "{SECRET}"\n', "bots.tg.tokn"),
], ids=["app-not-importable", "telegram-token-missing", "unknown-key-beside-a-secret"])
def test_bad_config_exits_before_consuming(tmp_path: Path, clean_redis: str, bots: str,
                                           key: str) -> None:
    started = time.monotonic()
    process = _worker(tmp_path, clean_redis, bots)
    try:
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
            process.wait(5)
    assert process.returncode == 2
    assert time.monotonic() - started < 20
    assert "configuration error" in err
    assert key in err
    assert SECRET not in out + err
    assert _heartbeats(clean_redis) == []


def test_good_config_starts_and_writes_its_heartbeat(tmp_path: Path, clean_redis: str) -> None:
    process = _worker(tmp_path, clean_redis,
                      '[bots.support]\nchannel = "web"\napp = "examples.support_bot:app"\n')
    try:
        deadline = time.monotonic() + 30
        while not _heartbeats(clean_redis):
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no heartbeat"
            time.sleep(0.2)
        client = redis_sync.Redis.from_url(clean_redis)
        assert client.zcard("cfgcheck:workers") == 1
    finally:
        os.killpg(process.pid, 15)
        process.communicate(timeout=30)
    assert client.zcard("cfgcheck:workers") == 0  # a clean stop removes its heartbeat
    client.close()
