"""The Qdrant retriever: dense + BM25 keyword search, fused by reciprocal rank (RRF)."""

from __future__ import annotations

import asyncio
from typing import Any

from qdrant_client import models

from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import KBRepository, Scope
from botcore.retrieval import Passage, Reranker, SearchMode

__all__ = ["QdrantRetriever", "rrf_fuse"]


def rrf_fuse(
    lists: list[list[models.ScoredPoint]], k: int = 60, weights: list[float] | None = None
) -> list[tuple[models.ScoredPoint, float]]:
    """Reciprocal rank fusion: a point scores ``Σ w/(k + rank)`` over the lists it is in.

    Args:
        lists: ranked hit lists (best first).
        k: the RRF constant; larger flattens the advantage of the top ranks.
        weights: one weight per list (default 1.0 each).

    Returns:
        (point, fused score), best first; ties keep first-seen order.
    """
    scores: dict[str, float] = {}
    points: dict[str, models.ScoredPoint] = {}
    for hits, weight in zip(lists, weights or [1.0] * len(lists), strict=True):
        for rank, hit in enumerate(hits, start=1):
            key = str(hit.id)
            points.setdefault(key, hit)
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    order = sorted(scores, key=lambda key: -scores[key])
    return [(points[key], scores[key]) for key in order]


class QdrantRetriever:
    """Hybrid retriever bound to one knowledge base, tenant and bot.

    Args:
        settings: the ``[kb]`` settings.
        kb: the knowledge base's name.
        tenant: the tenant id (server-side context, never model output).
        bot: the bot id.
        mode: ``hybrid``, ``dense`` or ``keyword``.
        reranker: optional hook over the fused candidates.
        resources: shared clients and models.
    """

    def __init__(
        self, settings: KBSettings, kb: str, *, tenant: str, bot: str,
        mode: SearchMode = "hybrid", reranker: Reranker | None = None,
        resources: KBResources,
    ) -> None:
        self._settings = settings
        self.kb = kb
        self.scope = Scope(tenant=tenant, bot=bot)
        self.mode: SearchMode = mode
        self._reranker = reranker
        self._resources = resources
        self._repo: KBRepository | None = None

    def _repository(self) -> KBRepository:
        if self._repo is None:
            self._repo = self._resources.repository(self._settings, self.kb, self.scope)
        return self._repo

    async def retrieve(self, query: str, *, k: int = 5) -> list[Passage]:
        """The best ``k`` passages for ``query``, best first, with citations."""
        query = query.strip()
        if not query or k < 1:
            return []
        dense, sparse = await self._encode(query)
        settings = self._settings
        repo = self._repository()
        search = repo.search if settings.local_index else repo.qdrant_search
        dense_hits, keyword_hits = await asyncio.to_thread(
            search, dense, sparse,
            limit=max(settings.candidates, k), min_score=settings.dense_floor(),
        )
        keyword_hits = [h for h in keyword_hits if h.score > settings.keyword_min_score]
        if self.mode == "hybrid":
            ranked = rrf_fuse([dense_hits, keyword_hits], settings.rrf_k,
                              [1.0, settings.keyword_weight])
        else:
            ranked = [(h, h.score) for h in (dense_hits or keyword_hits)]
        passages = [self._passage(hit.payload or {}, str(hit.id), score) for hit, score in ranked]
        if self.mode == "hybrid" and not await self._answerable(query, dense_hits, passages):
            return []
        if self._reranker is not None:
            passages = await self._reranker(query, passages)
        return passages[:k]

    async def _encode(self, query: str) -> tuple[list[float] | None, models.SparseVector | None]:
        dense = sparse = None
        if self.mode in ("hybrid", "dense"):
            dense = await self._resources.embedder(self._settings).embed_query(query)
        if self.mode in ("hybrid", "keyword"):
            encoder = self._resources.keywords(self._settings)
            sparse = await asyncio.to_thread(encoder.query, query)
        return dense, sparse

    async def _answerable(self, query: str, dense_hits: list[Any],
                          passages: list[Passage]) -> bool:
        """Whether anything found is about the question, not just near it.

        A rank-fused score says nothing about relevance, and compressed cosines (e5) put
        unrelated questions close to everything; so: a dense hit at ``answer_score`` and some
        candidate sharing ``min_coverage`` of the question's keywords, or one dense hit at
        ``strong_score`` or above. Questions with no keywords left pass on the dense hit alone.
        """
        settings = self._settings
        if settings.min_coverage <= 0 or not passages:
            return bool(passages)
        strong = settings.dense_strong()
        if strong is not None and dense_hits and dense_hits[0].score >= strong:
            return True
        needed = settings.dense_answer()
        if needed is not None and (not dense_hits or dense_hits[0].score < needed):
            return False
        encoder = self._resources.keywords(settings)
        wanted = set(await asyncio.to_thread(encoder.tokens, query))
        if not wanted:
            return bool(dense_hits)

        def best_coverage() -> float:
            return max(len(wanted & set(encoder.tokens(p.text))) / len(wanted)
                       for p in passages[:settings.candidates])

        return await asyncio.to_thread(best_coverage) >= settings.min_coverage

    def _passage(self, payload: dict[str, Any], chunk_id: str, score: float) -> Passage:
        page = payload.get("page")
        return Passage(
            text=str(payload.get("text", "")), score=score,
            source=str(payload.get("source", "")), title=str(payload.get("title", "")),
            heading=str(payload.get("heading", "")), page=int(page) if page is not None else None,
            chunk_id=chunk_id, kb=self.kb,
        )
