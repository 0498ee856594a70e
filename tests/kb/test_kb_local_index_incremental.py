"""Writes update the local index in place: same hits as a fresh rebuild, and no rebuild."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from kb_helpers import ingest
from qdrant_client import models

from botcore.kb.local_index import LocalIndex
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import KBRepository, Scope
from botcore.retrieval import make_retriever

DIM = 8
WRITERS = [Scope("a"), Scope("a", "x"), Scope("b"), Scope("a", "y")]
READERS = [Scope("a", "x"), Scope("a", "y"), Scope("a"), Scope("b", "z"), Scope("c", "x")]
Hits = list[models.ScoredPoint]


def _sparse(rng: random.Random) -> models.SparseVector:
    tokens = sorted(rng.sample(range(40), rng.randint(1, 6)))  # small vocabulary: many ties
    return models.SparseVector(indices=tokens, values=[rng.choice([0.5, 1.0, 1.5])
                                                       for _ in tokens])


def _points(repo: KBRepository, rng: random.Random, count: int) -> list[models.PointStruct]:
    points = []
    for _ in range(count):
        source, position = f"s{rng.randrange(12)}", rng.randrange(60)
        vector: dict[str, object] = {"dense": [rng.gauss(0, 1) for _ in range(DIM)]}
        if rng.random() < 0.9:
            vector["bm25"] = _sparse(rng)
        points.append(models.PointStruct(
            id=repo.point_id(source, "h", position), vector=vector,  # type: ignore[arg-type]
            payload={"source": source, "doc_hash": "h", "position": position}))
    return points


def _same(ours: Hits, fresh: Hits) -> None:
    assert [str(h.id) for h in ours] == [str(h.id) for h in fresh]
    assert [h.score for h in ours] == pytest.approx([h.score for h in fresh], abs=1e-6)
    assert [h.payload for h in ours] == [h.payload for h in fresh]


def _compare(settings: KBSettings, resources: KBResources, rng: random.Random) -> None:
    client, lock = resources.pool.get(settings)
    fresh_index = LocalIndex(client)
    for scope in READERS:
        ours = resources.repository(settings, "inc", scope)
        fresh = KBRepository(client, ours.collection, scope, lock, fresh_index)
        for limit, min_score in ((5, None), (200, None), (10, 0.2)):
            query = ([rng.gauss(0, 1) for _ in range(DIM)], _sparse(rng))
            (dense, keyword) = ours.search(*query, limit=limit, min_score=min_score)
            (f_dense, f_keyword) = fresh.search(*query, limit=limit, min_score=min_score)
            _same(dense, f_dense)
            _same(keyword, f_keyword)


def test_incremental_index_equals_a_fresh_rebuild(
    kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    rng = random.Random(5)
    repos = {s: kb_resources.repository(kb_settings, "inc", s) for s in WRITERS}
    repos[WRITERS[0]].ensure_collection(DIM)
    repos[WRITERS[0]].upsert(_points(repos[WRITERS[0]], rng, 40))
    _compare(kb_settings, kb_resources, rng)  # builds every reader's index and the IDF
    index = kb_resources.pool.index(kb_settings)
    assert index is not None
    built = index.builds
    for step in range(40):
        repo = repos[rng.choice(WRITERS)]
        action = rng.random()
        if action < 0.55:  # new points and replacements (same ids, new vectors)
            repo.upsert(_points(repo, rng, rng.choice([1, 7, 60, 300])))
        elif action < 0.85:
            repo.delete_source(f"s{rng.randrange(12)}")
        elif action < 0.95:
            repo.delete_all()  # with enough rows gone, the scope compacts
        else:
            repo.delete_source("never-written")
        if step % 4 == 3:
            _compare(kb_settings, kb_resources, rng)
    _compare(kb_settings, kb_resources, rng)
    assert index.builds == built  # every write was applied in place


def test_failed_write_invalidates(kb_settings: KBSettings, kb_resources: KBResources) -> None:
    rng = random.Random(1)
    repo = kb_resources.repository(kb_settings, "inc", Scope("a"))
    repo.ensure_collection(DIM)
    repo.upsert(_points(repo, rng, 20))
    _compare(kb_settings, kb_resources, rng)
    index = kb_resources.pool.index(kb_settings)
    assert index is not None
    built = index.builds
    bad = models.PointStruct(id=repo.point_id("s", "h", 0), vector={"dense": [1.0, 2.0]})
    with pytest.raises(Exception):  # noqa: B017,PT011 - Qdrant's wrong-dimension error
        repo.upsert([bad])
    _compare(kb_settings, kb_resources, rng)
    assert index.builds > built  # rebuilt from what Qdrant holds


def _retrieve(settings: KBSettings, resources: KBResources, question: str) -> str:
    retriever = make_retriever(settings, "test", tenant="acme", bot="support",
                               resources=resources)
    return " ".join(p.text for p in asyncio.run(retriever.retrieve(question, k=10)))


def test_ingest_then_retrieve_does_not_rebuild(
    tmp_path: Path, kb_settings: KBSettings, kb_resources: KBResources
) -> None:
    doc = tmp_path / "docs" / "policy.txt"
    doc.parent.mkdir()
    doc.write_text("ACME 退货政策：7 天无理由退货。发货后三天内送达。", encoding="utf-8")
    assert ingest(kb_settings, kb_resources, [doc], tenant="acme").ok
    assert "7 天" in _retrieve(kb_settings, kb_resources, "退货政策")  # builds the index
    index = kb_resources.pool.index(kb_settings)
    assert index is not None
    built = index.builds
    doc.write_text("ACME 退货政策：15 天无理由退货。", encoding="utf-8")  # new version
    hours = tmp_path / "docs" / "hours.txt"
    hours.write_text("营业时间：早九点到晚六点。", encoding="utf-8")
    assert ingest(kb_settings, kb_resources, [doc, hours], tenant="acme").ok
    seen = _retrieve(kb_settings, kb_resources, "退货政策")
    assert "15 天" in seen
    assert "7 天" not in seen
    assert "早九点" in _retrieve(kb_settings, kb_resources, "营业时间")
    assert index.builds == built
    repo = kb_resources.repository(kb_settings, "test", Scope("acme", "support"))
    query = (asyncio.run(kb_resources.embedder(kb_settings).embed_query("退货政策")),
             kb_resources.keywords(kb_settings).query("退货政策"))
    (dense, keyword) = repo.search(*query, limit=10)
    (q_dense, q_keyword) = repo.qdrant_search(*query, limit=10)
    assert [str(h.id) for h in dense] == [str(h.id) for h in q_dense]
    assert [str(h.id) for h in keyword] == [str(h.id) for h in q_keyword]
    assert [h.score for h in keyword] == pytest.approx([h.score for h in q_keyword], 1e-4)
