"""KB jobs in-process: the worker's side refuses another folder; the CLI finds embedded Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from botcore.kb.jobs import JobState, KBJob, execute
from botcore.kb.remote import _redis_url, new_job_id
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import Scope
from botcore.settings import Settings


def _job(settings: KBSettings, **fields: object) -> KBJob:
    return KBJob.model_validate({"id": new_job_id(), "kb": "shop", "tenant": "acme",
                                 "storage": str(settings.storage_path().resolve()), **fields})


def test_a_job_runs_here_and_publishes_its_progress(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("仓库位于杭州。", encoding="utf-8")
    (docs / "b.txt").write_text("发货后三天内送达。", encoding="utf-8")
    seen: list[JobState] = []
    state = asyncio.run(execute(_job(kb_settings, op="ingest", paths=[str(docs)]),
                                kb_settings, kb_resources,
                                lambda s: seen.append(s.model_copy(deep=True))))
    assert state.state == "done", state.error
    assert [o["source"] for o in state.outcomes] == ["docs/a.txt", "docs/b.txt"]
    assert [(s.state, s.done, s.total) for s in seen] == [
        ("running", 0, 0), ("running", 0, 2), ("running", 1, 2), ("running", 2, 2),
        ("done", 2, 2)]

    deleted = asyncio.run(execute(_job(kb_settings, op="delete", source="docs/a.txt"),
                                  kb_settings, kb_resources, lambda _s: None))
    assert deleted.message == "deleted docs/a.txt from shop (acme/*)"
    repo = kb_resources.repository(kb_settings, "shop", Scope("acme"))
    assert [d.source for d in repo.documents()] == ["docs/b.txt"]


def test_the_worker_refuses_a_job_for_another_folder(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    other = KBSettings(data_path=tmp_path / "elsewhere")
    state = asyncio.run(execute(_job(other, op="delete"), kb_settings, kb_resources,
                                lambda _s: None))
    assert state.state == "failed"
    assert "use the same botcore.toml and data_dir" in state.error
    assert not kb_settings.storage_path().exists()  # nothing was opened or written


def test_the_cli_finds_a_running_embedded_redis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOTCORE_REDIS_URL", raising=False)
    settings = Settings(data_dir=tmp_path)
    assert _redis_url(settings) is None
    (tmp_path / "redis").mkdir()
    (tmp_path / "redis" / "url").write_text("redis://127.0.0.1:6399/0\n", encoding="utf-8")
    assert _redis_url(settings) == "redis://127.0.0.1:6399/0"
    assert _redis_url(Settings(data_dir=tmp_path, redis_url="redis://r:6379/1")) == \
        "redis://r:6379/1"
