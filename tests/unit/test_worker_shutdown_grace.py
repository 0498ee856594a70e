"""Rolling deploys: the worker's shutdown grace is a setting, and Celery gets it too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from celery import signals

from botcore.queue import celery_app
from botcore.queue.celery_app import celery_settings, make_celery
from botcore.settings import Settings, load_settings


def test_default_grace_is_longer_than_a_model_turn() -> None:
    settings = Settings()
    assert settings.worker.shutdown_grace == 60.0
    assert celery_settings(settings, "redis://x")["worker_soft_shutdown_timeout"] == 60.0


def test_grace_from_toml_reaches_the_celery_app(tmp_path: Path) -> None:
    path = tmp_path / "botcore.toml"
    path.write_text("[worker]\nshutdown_grace = 90\n", "utf-8")
    settings = load_settings(path)
    app = make_celery(settings, "redis://127.0.0.1:1/0")
    assert app.conf.worker_soft_shutdown_timeout == 90.0


def test_pool_process_waits_the_configured_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []

    def record(self: Any, timeout: float) -> None:
        waited.append(timeout)

    monkeypatch.setattr(celery_app._ProcessState, "wait_idle", record)
    make_celery(Settings(worker={"shutdown_grace": 42}), "redis://127.0.0.1:1/0")
    signals.worker_process_shutdown.send(sender=None, pid=0, exitcode=0)
    assert 42.0 in waited
