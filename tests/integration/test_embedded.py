"""`botcore serve` with no Redis URL: embedded Redis + worker, all stopped on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from botcore.redis_server import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _first_message(base: str) -> str:
    """The text of the first bot message on conversation c1's event stream."""
    deadline = time.monotonic() + 45
    with httpx.stream("GET", f"{base}/chat/api/support/events",
                      params={"conversation_id": "c1"}, timeout=50) as events:
        for line in events.iter_lines():
            assert time.monotonic() < deadline, "no answer from the embedded worker"
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if data.get("type") == "message":
                    return str(data["text"])
    raise AssertionError("event stream ended without a message")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_embedded_answers_then_stops_everything(tmp_path: Path, signum: int) -> None:
    port = free_port()
    (tmp_path / "botcore.toml").write_text(
        f'data_dir = "{tmp_path / "data"}"\nport = {port}\n'
        '[bots.support]\nchannel = "web"\napp = "examples.support_bot:app"\n', "utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "BOTCORE_CONFIG": str(tmp_path / "botcore.toml")}
    env.pop("BOTCORE_REDIS_URL", None)
    serve = subprocess.Popen([sys.executable, "-m", "botcore", "serve"], cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert serve.poll() is None, "botcore serve exited early"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "embedded stack never became ready"
            time.sleep(0.2)
        children = _children(serve.pid)
        assert len(children) == 2  # redis-server and the worker
        answer = httpx.post(f"{base}/webhooks/web/support", json={
            "conversation_id": "c1", "user_id": "u1", "text": "hi", "client_msg_id": "m1"})
        assert answer.status_code == 200
        assert _first_message(base)  # the embedded worker answered
        url_file = tmp_path / "data" / "redis" / "url"
        assert url_file.read_text().startswith("redis://127.0.0.1:")
        stats = subprocess.run([sys.executable, "-m", "botcore", "inbox", "stats"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=60)
        assert stats.returncode == 0, stats.stderr   # found the running serve's Redis
        assert json.loads(stats.stdout)["dead_letters"] == 0
        serve.send_signal(signum)
        assert serve.wait(40) is not None
        time.sleep(0.5)
        assert [pid for pid in children if _alive(pid)] == []
        assert not url_file.exists()
    finally:
        if serve.poll() is None:
            serve.kill()
