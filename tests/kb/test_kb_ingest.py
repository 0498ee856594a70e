"""Ingestion into real Qdrant local mode: formats, incremental re-ingest, sync, failures, SQL."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from kb_helpers import ingest, write_fixtures

from botcore.kb.ingest import Ingestor
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import Scope


def _docs(settings: KBSettings, resources: KBResources) -> dict[str, int]:
    repo = resources.repository(settings, "test", Scope("t1"))
    return {Path(d.source).name: d.chunks for d in repo.documents()}


def test_every_format_is_ingested(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    write_fixtures(tmp_path / "docs")
    (tmp_path / "docs" / "readme.xyz").write_text("ignored")
    report = ingest(kb_settings, kb_resources, [tmp_path / "docs"])
    assert report.ok
    assert report.count("added") == 7
    assert [o.reason for o in report.outcomes if o.status == "skipped"] == ["unknown format"]
    assert _docs(kb_settings, kb_resources) == {
        "notes.txt": 1, "guide.md": 2, "page.html": 1, "manual.pdf": 2, "policy.docx": 1,
        "faq.xlsx": 2, "faq.csv": 1,
    }


def test_reingest_skips_unchanged_replaces_changed_and_syncs(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\n## One\n\nalpha\n\n## Two\n\nbeta", encoding="utf-8")
    (docs / "b.txt").write_text("bravo", encoding="utf-8")
    assert ingest(kb_settings, kb_resources, [docs]).count("added") == 2

    again = ingest(kb_settings, kb_resources, [docs])
    assert again.count("unchanged") == 2
    assert again.count("added") == again.count("updated") == 0

    (docs / "a.md").write_text("# A\n\nonly one chunk now", encoding="utf-8")
    (docs / "b.txt").unlink()
    changed = ingest(kb_settings, kb_resources, [docs])
    assert [(Path(o.source).name, o.status) for o in changed.outcomes] == [("a.md", "updated")]
    assert _docs(kb_settings, kb_resources) == {"a.md": 1, "b.txt": 1}  # no --sync yet

    synced = ingest(kb_settings, kb_resources, [docs], sync=True)
    assert [(Path(o.source).name, o.status) for o in synced.outcomes] == [
        ("a.md", "unchanged"), ("b.txt", "removed")]
    assert _docs(kb_settings, kb_resources) == {"a.md": 1}


def test_a_failing_file_keeps_its_previous_version(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    good, other = tmp_path / "manual.pdf", tmp_path / "ok.txt"
    good.write_text("placeholder")
    from kb_helpers import make_pdf

    good.write_bytes(make_pdf(["Warranty lasts two years"]))
    other.write_text("first")
    assert ingest(kb_settings, kb_resources, [good, other]).ok

    good.write_bytes(b"%PDF-1.4 truncated garbage")
    other.write_text("second version")
    report = ingest(kb_settings, kb_resources, [good, other])
    assert not report.ok
    assert [(Path(o.source).name, o.status) for o in report.outcomes] == [
        ("manual.pdf", "failed"), ("ok.txt", "updated")]
    assert "unreadable PDF" in report.failed[0].reason
    assert _docs(kb_settings, kb_resources) == {"manual.pdf": 1, "ok.txt": 1}


def test_missing_and_empty_files_fail_without_stopping_the_rest(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "fine.txt").write_text("fine")
    report = ingest(kb_settings, kb_resources,
                    [tmp_path / "empty.md", tmp_path / "gone.txt", tmp_path / "fine.txt"])
    reasons = {Path(o.source).name: (o.status, o.reason) for o in report.outcomes}
    assert reasons["empty.md"] == ("failed", "empty file")
    assert reasons["gone.txt"][0] == "failed"
    assert "cannot read" in reasons["gone.txt"][1]
    assert reasons["fine.txt"] == ("added", "")


def _shop(path: Path) -> str:
    with sqlite3.connect(path) as db:
        db.execute("create table products (name text, price real, stock int)")
        db.executemany("insert into products values (?, ?, ?)",
                       [("蓝牙耳机", 199.0, 12), ("USB-C cable", 9.9, 0)])
    return f"sqlite:///{path}"


def test_sql_rows_become_chunks_and_bad_sql_fails(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    url = _shop(tmp_path / "shop.db")
    ingestor = Ingestor(kb_settings, "test", Scope("t1"), kb_resources)
    template = "{name}: 价格 {price} 元, 库存 {stock}"
    report = asyncio.run(ingestor.ingest_sql(url, "select * from products", template,
                                             name="products"))
    assert [(o.source, o.status, o.chunks) for o in report.outcomes] == [("products", "added", 2)]
    again = asyncio.run(ingestor.ingest_sql(url, "select * from products", template,
                                            name="products"))
    assert again.outcomes[0].status == "unchanged"

    bad = asyncio.run(ingestor.ingest_sql(url, "select * from nowhere", template))
    assert bad.outcomes[0].status == "failed"
    assert "SQL failed" in bad.outcomes[0].reason
    assert bad.outcomes[0].source.startswith("sql:shop.db#")
    field = asyncio.run(ingestor.ingest_sql(url, "select name from products", template))
    assert "not a column" in field.outcomes[0].reason


@pytest.mark.parametrize("url", ["nodriver://x/y", "not a url"])
def test_bad_database_url_is_reported(
    url: str, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    ingestor = Ingestor(kb_settings, "test", Scope("t1"), kb_resources)
    report = asyncio.run(ingestor.ingest_sql(url, "select 1", "{x}"))
    assert not report.ok
    assert "URL" in report.failed[0].reason
