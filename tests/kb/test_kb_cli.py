"""``botcore kb ...`` through Typer's CliRunner, on real Qdrant local mode under data_dir."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from conftest import SAMPLE
from kb_helpers import make_pdf
from typer.testing import CliRunner

from botcore.kb.cli import kb_app
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory without botcore.toml and a data_dir under tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    monkeypatch.setenv("BOTCORE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _invoke(resources: KBResources, *args: str) -> tuple[int, str]:
    result = runner.invoke(kb_app, list(args), obj=resources)
    return result.exit_code, result.output


def test_ingest_search_list_delete(cli_env: Path, kb_resources: KBResources) -> None:
    docs = cli_env / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text("# Returns\n\n## 时限\n\n签收后 7 天内可以退货。",
                                     encoding="utf-8")
    code, out = _invoke(kb_resources, "ingest", "docs", "--kb", "shop", "--tenant", "acme")
    assert code == 0, out
    assert "docs/returns.md" in out
    assert "added 1" in out
    assert (cli_env / "data" / "qdrant").is_dir()

    code, out = _invoke(kb_resources, "search", "退货要几天", "--kb", "shop", "--tenant", "acme")
    assert code == 0, out
    assert "docs/returns.md › Returns > 时限" in out
    assert "7 天内可以退货" in out

    _, out = _invoke(kb_resources, "search", "退货要几天", "--kb", "shop", "--tenant", "other")
    assert "no passage" in out

    code, out = _invoke(kb_resources, "list")
    assert out.split() == ["shop"]
    _, out = _invoke(kb_resources, "list", "--kb", "shop", "--tenant", "acme")
    assert "docs/returns.md" in out

    code, out = _invoke(kb_resources, "delete", "--kb", "shop", "--tenant", "acme")
    assert code == 0
    _, out = _invoke(kb_resources, "list", "--kb", "shop", "--tenant", "acme")
    assert "returns.md" not in out


def test_failures_are_summarised_and_exit_non_zero(
    cli_env: Path, kb_resources: KBResources
) -> None:
    (cli_env / "ok.txt").write_text("good text")
    (cli_env / "locked.pdf").write_bytes(make_pdf([""]))
    (cli_env / "empty.txt").write_text("")
    code, out = _invoke(kb_resources, "ingest", "ok.txt", "locked.pdf", "empty.txt")
    assert code == 1
    assert "no extractable text" in out
    assert "empty file" in out
    assert "added 1, failed 2" in out


def test_sql_ingest(cli_env: Path, kb_resources: KBResources) -> None:
    with sqlite3.connect(cli_env / "shop.db") as db:
        db.execute("create table p (name text, price int)")
        db.execute("insert into p values ('耳机', 199)")
    url = f"sqlite:///{cli_env / 'shop.db'}"
    code, out = _invoke(kb_resources, "ingest", "--sql", url, "--query", "select * from p",
                        "--template", "{name} 售价 {price} 元", "--name", "products")
    assert code == 0, out
    assert "products" in out
    code, out = _invoke(kb_resources, "ingest", "--sql", url, "--query", "select * from nope",
                        "--template", "{name}")
    assert code == 1
    assert "SQL failed" in out
    code, out = _invoke(kb_resources, "ingest", "--sql", url)
    assert code != 0


def test_eval_prints_all_modes(
    cli_env: Path, kb_resources: KBResources, sample_kb: KBSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert sample_kb.data_path is not None
    monkeypatch.setenv("BOTCORE_DATA_DIR", str(sample_kb.data_path.parent))  # reuse, no re-ingest
    code, out = _invoke(kb_resources, "eval", str(SAMPLE / "qa.jsonl"), "--kb", "sample",
                        "--min-hit5", "0.9")
    assert code == 0, out
    for word in ("dense", "keyword", "hybrid", "hit@1", "hit@5", "MRR", "p50 ms", "p99 ms"):
        assert word in out
    bad = cli_env / "bad.jsonl"
    bad.write_text('{"question": "x"}\n')
    code, out = _invoke(kb_resources, "eval", str(bad), "--kb", "sample")
    assert code == 2
    assert "bad.jsonl:1" in out
