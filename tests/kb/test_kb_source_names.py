"""Source names do not depend on the working directory and never carry a server path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kb_helpers import ingest

from botcore.kb.ingest import source_name
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import Scope
from botcore.retrieval import make_retriever


def _sources(settings: KBSettings, resources: KBResources) -> list[str]:
    repo = resources.repository(settings, "test", Scope("t1"))
    return [d.source for d in repo.documents()]


def _tree(base: Path) -> Path:
    docs = base / "srv" / "kb" / "docs"
    (docs / "guides").mkdir(parents=True)
    (docs / "faq.csv").write_text("question,answer\n保修多久？,整机保修两年。\n", encoding="utf-8")
    (docs / "guides" / "returns.md").write_text("# Returns\n\nReturns within 30 days.",
                                                encoding="utf-8")
    return docs


def test_names_are_relative_to_the_argument_root(tmp_path: Path) -> None:
    docs = _tree(tmp_path)
    assert source_name(docs / "guides" / "returns.md", root=docs) == "docs/guides/returns.md"
    assert source_name(docs / "faq.csv") == "faq.csv"
    assert source_name(docs / ".." / "docs" / "faq.csv", root=docs / ".." / "docs") == \
        "docs/faq.csv"


def test_relative_and_absolute_invocations_make_one_source(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = _tree(tmp_path)
    monkeypatch.chdir(tmp_path / "srv")
    first = ingest(kb_settings, kb_resources, [Path("kb/docs")])
    assert first.count("added") == 2
    monkeypatch.chdir(tmp_path)
    again = ingest(kb_settings, kb_resources, [docs.resolve()], sync=True)
    assert [(o.source, o.status) for o in again.outcomes] == [
        ("docs/faq.csv", "unchanged"), ("docs/guides/returns.md", "unchanged")]
    assert _sources(kb_settings, kb_resources) == ["docs/faq.csv", "docs/guides/returns.md"]

    (docs / "guides" / "returns.md").unlink()
    monkeypatch.chdir(docs / "guides")
    synced = ingest(kb_settings, kb_resources, [Path("..")], sync=True)
    assert ("docs/guides/returns.md", "removed") in [(o.source, o.status)
                                                      for o in synced.outcomes]
    assert _sources(kb_settings, kb_resources) == ["docs/faq.csv"]


def test_sync_removes_old_absolute_names_under_the_folder(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    docs = _tree(tmp_path)
    repo = kb_resources.repository(kb_settings, "test", Scope("t1"))
    old = (docs / "faq.csv").resolve().as_posix()  # how an absolute path used to be stored
    ingest(kb_settings, kb_resources, [docs / "faq.csv"])
    asyncio.run(_rename(repo.collection, kb_settings, kb_resources, "faq.csv", old))
    assert _sources(kb_settings, kb_resources) == [old]

    report = ingest(kb_settings, kb_resources, [docs], sync=True)
    assert (old, "removed") in [(o.source, o.status) for o in report.outcomes]
    assert _sources(kb_settings, kb_resources) == ["docs/faq.csv", "docs/guides/returns.md"]


async def _rename(collection: str, settings: KBSettings, resources: KBResources,
                  source: str, new: str) -> None:
    """Rewrite a source's name in place, as an older release would have stored it."""
    from qdrant_client import models

    client, _ = resources.pool.get(settings)
    flt = models.Filter(must=[models.FieldCondition(key="source",
                                                    match=models.MatchValue(value=source))])
    client.set_payload(collection, payload={"source": new}, points=flt, wait=True)
    index = resources.pool.index(settings)
    assert index is not None
    index.invalidate(collection, None)


def test_citations_carry_no_absolute_path(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    docs = _tree(tmp_path)
    assert ingest(kb_settings, kb_resources, [docs.resolve()], tenant="t1").ok
    retriever = make_retriever(kb_settings, "test", tenant="t1", bot="support",
                               resources=kb_resources)
    passages = asyncio.run(retriever.retrieve("保修多久", k=5))
    assert passages
    assert passages[0].source == "docs/faq.csv"
    for passage in passages:
        assert str(tmp_path) not in passage.citation()
        assert not passage.source.startswith("/")
