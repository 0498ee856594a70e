"""``botcore kb ingest/search/delete`` while a real ``botcore worker`` holds the local folder.

Real Redis, a real worker subprocess (it opens Qdrant's local folder and keeps it, as in
``botcore serve``), the CLI through Typer's runner: the CLI meets the folder lock and hands
the job to the worker, whose retriever then finds the new passage.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_sync
from typer.testing import CliRunner

from botcore.embedded import start_worker_process, stop_process
from botcore.kb.cli import kb_app
from botcore.kb.errors import StoreLockedError
from botcore.kb.jobs import JobState, KBJob
from botcore.kb.remote import hand_over, new_job_id
from botcore.kb.resources import KBResources
from botcore.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
PREFIX = "kbhand"
runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, clean_redis: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BOTCORE_CONFIG", "BOTCORE_DATA_DIR", "BOTCORE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "botcore.toml"
    path.write_text(f'key_prefix = "{PREFIX}"\nredis_url = "{clean_redis}"\n'
                    f'data_dir = "{tmp_path / "data"}"\n\n[bots.support]\nchannel = "web"\n'
                    'app = "examples.support_bot:app"\n', encoding="utf-8")
    return path


@pytest.fixture
def worker(config: Path, clean_redis: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = start_worker_process(clean_redis, config=config, concurrency=1, env=env)
    client = redis_sync.Redis.from_url(clean_redis)
    try:
        deadline = time.monotonic() + 60
        while not client.zcard(f"{PREFIX}:workers"):
            assert process.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "no worker heartbeat"
            time.sleep(0.2)
        yield process
    finally:
        client.close()
        stop_process(process, timeout=20)


def _cli(resources: KBResources, config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(kb_app, [*args, "--config", str(config)], obj=resources)
    return result.exit_code, result.output


def _faq(folder: Path, name: str, question: str, answer: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f"question,answer\n{question},{answer}\n", encoding="utf-8")


def test_ingest_and_search_go_through_the_worker_holding_the_folder(
    tmp_path: Path, config: Path, worker: subprocess.Popen[bytes], kb_resources: KBResources
) -> None:
    docs = tmp_path / "docs"
    _faq(docs, "hours.csv", "营业时间是几点？", "每天 9:00 到 21:00 营业。")
    settings = load_settings(config)
    storage = settings.kb.resolve(settings.data_dir).storage_path().resolve()
    # The worker opens the folder on its first job (a bot opens it on its first retrieval).
    first = KBJob(id=new_job_id(), op="ingest", kb="shop", tenant="acme", storage=str(storage),
                  paths=[str(docs)])
    states: list[JobState] = []
    done = asyncio.run(hand_over(settings, first, StoreLockedError(str(storage), "held"),
                                 states.append))
    assert done.state == "done", done.error
    assert [(o["source"], o["status"]) for o in done.outcomes] == [("docs/hours.csv", "added")]
    assert states[-1].done == states[-1].total == 1

    code, out = _cli(kb_resources, config, "search", "营业时间", "--kb", "shop",
                     "--tenant", "acme")
    assert code == 0, out
    assert "done by its worker" in out  # the CLI met the lock and handed the search over
    assert "docs/hours.csv" in out
    assert "保修" not in out  # the worker's local index is built now, without the new file

    _faq(docs, "warranty.csv", "保修多久？", "整机保修两年，电池保修一年。")
    code, out = _cli(kb_resources, config, "ingest", str(docs), "--kb", "shop",
                     "--tenant", "acme", "--sync")
    assert code == 0, out
    assert "done by its worker" in out
    assert "docs/warranty.csv" in out
    assert "added 1, unchanged 1" in out

    code, out = _cli(kb_resources, config, "search", "保修多久", "--kb", "shop",
                     "--tenant", "acme")
    assert code == 0, out
    assert "docs/warranty.csv" in out  # the worker's retriever sees the new chunks
    assert "整机保修两年" in out
    assert str(tmp_path) not in out

    code, out = _cli(kb_resources, config, "delete", "--kb", "shop", "--tenant", "acme",
                     "--source", "docs/warranty.csv")
    assert code == 0, out
    assert "deleted docs/warranty.csv" in out
    _, out = _cli(kb_resources, config, "search", "保修多久", "--kb", "shop", "--tenant", "acme")
    assert "docs/warranty.csv" not in out


def test_a_folder_held_without_a_worker_is_a_clear_error(
    tmp_path: Path, config: Path, kb_resources: KBResources
) -> None:
    settings = load_settings(config)
    storage = settings.kb.resolve(settings.data_dir).storage_path()
    storage.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom qdrant_client import QdrantClient\n"
         f"c = QdrantClient(path={str(storage)!r})\nprint('ready', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"ready"
        _faq(tmp_path / "docs", "a.csv", "q?", "a.")
        code, out = _cli(kb_resources, config, "ingest", str(tmp_path / "docs"), "--kb", "shop")
    finally:
        holder.kill()
        holder.wait(10)
    assert code == 2
    flat = " ".join(out.split())
    assert "is in use by another process" in flat
    assert "no botcore worker is running" in flat
    assert "kb.qdrant_url" in flat
