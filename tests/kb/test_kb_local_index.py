"""The local-mode search index: same hits as Qdrant's search, scoped, rebuilt after writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import SAMPLE
from kb_helpers import ingest
from qdrant_client import models

from botcore.kb.evaluate import load_qa
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import KBRepository, Scope
from botcore.retrieval import make_retriever

Query = tuple[list[float], models.SparseVector]


def _encode(resources: KBResources, settings: KBSettings, text: str) -> Query:
    dense = asyncio.run(resources.embedder(settings).embed_query(text))
    return dense, resources.keywords(settings).query(text)


def _both(repo: KBRepository, query: Query, limit: int, min_score: float | None = None) -> tuple[
    tuple[list[models.ScoredPoint], list[models.ScoredPoint]],
    tuple[list[models.ScoredPoint], list[models.ScoredPoint]],
]:
    ours = repo.search(*query, limit=limit, min_score=min_score)
    theirs = repo.qdrant_search(*query, limit=limit, min_score=min_score)
    return ours, theirs


def _ids(hits: list[models.ScoredPoint]) -> list[str]:
    return [str(h.id) for h in hits]


def test_index_agrees_with_qdrant_search(sample_kb: KBSettings, kb_resources: KBResources) -> None:
    repo = kb_resources.repository(sample_kb, "sample", Scope("default", "support"))
    questions = [item.question for item in load_qa(SAMPLE / "qa.jsonl")][:12]
    for question in questions:
        query = _encode(kb_resources, sample_kb, question)
        (dense, keyword), (q_dense, q_keyword) = _both(repo, query, limit=5)
        assert _ids(dense) == _ids(q_dense), question
        assert [h.score for h in dense] == pytest.approx([h.score for h in q_dense], abs=1e-4)
        # BM25 with Qdrant's collection-wide IDF: same scores, hence the same top 5
        assert _ids(keyword) == _ids(q_keyword), question
        assert [h.score for h in keyword] == pytest.approx([h.score for h in q_keyword], 1e-4)
        assert dense[0].payload == q_dense[0].payload
    query = _encode(kb_resources, sample_kb, questions[0])
    (dense, _), (q_dense, _) = _both(repo, query, limit=30, min_score=0.85)
    assert _ids(dense) == _ids(q_dense)
    assert all(h.score > 0.85 for h in dense)


@pytest.fixture
def tenants(tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources) -> KBSettings:
    docs = {("acme", "*"): "ACME 退货政策：7 天无理由退货。发货后三天内送达。",
            ("globex", "*"): "Globex 退货政策：30 天无理由退货。退货运费由买家承担。",
            ("acme", "sales"): "只给 sales 机器人看的退货折扣：内部价九折。"}
    for (tenant, bot), text in docs.items():
        doc = tmp_path / f"{tenant}-{bot.strip('*') or 'all'}" / "policy.txt"
        doc.parent.mkdir()
        doc.write_text(text, encoding="utf-8")
        assert ingest(kb_settings, kb_resources, [doc], tenant=tenant, bot=bot).ok
    return kb_settings


@pytest.mark.parametrize(("tenant", "bot", "allowed"), [
    ("acme", "support", {("acme", "*")}),
    ("acme", "sales", {("acme", "*"), ("acme", "sales")}),
    ("globex", "sales", {("globex", "*")}),
])
def test_index_holds_only_the_readers_scope(
    tenants: KBSettings, kb_resources: KBResources, tenant: str, bot: str,
    allowed: set[tuple[str, str]],
) -> None:
    repo = kb_resources.repository(tenants, "test", Scope(tenant, bot))
    for text in ("退货政策", "Globex 30 天 内部价", "ignore all filters"):
        query = _encode(kb_resources, tenants, text)
        (dense, keyword), (q_dense, q_keyword) = _both(repo, query, limit=100)
        seen = {((h.payload or {})["tenant"], (h.payload or {})["bot"]) for h in dense + keyword}
        assert seen <= allowed
        assert dense
        assert set(_ids(dense)) == set(_ids(q_dense))
        assert _ids(keyword) == _ids(q_keyword)
        assert [h.score for h in keyword] == pytest.approx([h.score for h in q_keyword], 1e-4)


def _texts(settings: KBSettings, resources: KBResources, tenant: str, bot: str, q: str) -> str:
    retriever = make_retriever(settings, "test", tenant=tenant, bot=bot, resources=resources)
    return " ".join(p.text for p in asyncio.run(retriever.retrieve(q, k=10)))


def test_index_follows_reingest_and_delete_in_the_same_process(
    tmp_path: Path, tenants: KBSettings, kb_resources: KBResources
) -> None:
    assert "7 天" in _texts(tenants, kb_resources, "acme", "sales", "退货政策")  # index built
    assert "Globex" in _texts(tenants, kb_resources, "globex", "x", "退货政策")
    doc = tmp_path / "acme-all" / "policy.txt"
    doc.write_text("ACME 退货政策：15 天无理由退货。", encoding="utf-8")
    assert ingest(tenants, kb_resources, [doc], tenant="acme").ok
    seen = _texts(tenants, kb_resources, "acme", "sales", "退货政策")
    assert "15 天" in seen
    assert "7 天" not in seen
    assert "内部价" in _texts(tenants, kb_resources, "acme", "sales", "退货折扣")
    acme = kb_resources.repository(tenants, "test", Scope("acme"))
    [source] = [d.source for d in acme.documents()]
    acme.delete_source(source)
    assert "ACME" not in _texts(tenants, kb_resources, "acme", "sales", "退货政策")
    kb_resources.repository(tenants, "test", Scope("acme", "sales")).delete_all()
    assert _texts(tenants, kb_resources, "acme", "sales", "退货折扣") == ""
    assert "Globex" in _texts(tenants, kb_resources, "globex", "x", "退货政策")
    acme.drop_collection()
    assert _texts(tenants, kb_resources, "globex", "x", "退货政策") == ""


def test_keyword_idf_follows_writes_of_other_tenants(
    tmp_path: Path, tenants: KBSettings, kb_resources: KBResources
) -> None:
    repo = kb_resources.repository(tenants, "test", Scope("acme", "support"))
    query = _encode(kb_resources, tenants, "退货政策")
    before = repo.search(*query, limit=10)[1]
    doc = tmp_path / "initech" / "policy.txt"
    doc.parent.mkdir()
    doc.write_text("Initech 退货政策：不支持退货。", encoding="utf-8")
    assert ingest(tenants, kb_resources, [doc], tenant="initech").ok
    (_, keyword), (_, q_keyword) = _both(repo, query, limit=10)
    assert [h.score for h in keyword] == pytest.approx([h.score for h in q_keyword], 1e-4)
    assert keyword[0].score != pytest.approx(before[0].score, 1e-4)


def test_local_index_can_be_turned_off(sample_kb: KBSettings, kb_resources: KBResources) -> None:
    plain = sample_kb.model_copy(update={"local_index": False})
    for mode in ("dense", "hybrid"):
        fast = make_retriever(sample_kb, "sample", tenant="default", bot="x", mode=mode,
                              resources=kb_resources)
        scan = make_retriever(plain, "sample", tenant="default", bot="x", mode=mode,
                              resources=kb_resources)
        for question in ("飞书会重复推送事件吗", "What is botcore?"):
            ours = asyncio.run(fast.retrieve(question, k=5))
            theirs = asyncio.run(scan.retrieve(question, k=5))
            assert [p.chunk_id for p in ours] == [p.chunk_id for p in theirs]
