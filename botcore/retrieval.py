"""Retrieval contract for flows: :class:`Passage`, the :class:`Retriever` protocol, the factory.

A retriever is bound to one knowledge base, tenant and bot when it is made; the query is the
only thing a flow (or a model) can choose, so scope never comes from model output::

    retriever = make_retriever(settings.kb, "support", tenant="acme", bot="helpdesk")
    passages = await retriever.retrieve("退货要多久？", k=5)
    for p in passages:
        print(p.score, p.citation(), p.text)

The default implementation (``botcore.kb``) searches Qdrant with dense vectors and BM25
keyword vectors (jieba word segmentation) and fuses both lists by rank (RRF).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from botcore.kb.resources import KBResources
    from botcore.kb.settings import KBSettings

__all__ = ["Passage", "Reranker", "Retriever", "SearchMode", "make_retriever"]

SearchMode = Literal["hybrid", "dense", "keyword"]


class Passage(BaseModel):
    """One retrieved chunk with its citation.

    Attributes:
        text: the chunk's text.
        score: higher is better. Hybrid: the fused rank score ``Σ 1/(rrf_k + rank)``; dense:
            cosine similarity; keyword: BM25 score. A reranker may replace it.
        source: file path or SQL source name the chunk came from.
        title: the document's title.
        heading: heading path inside the document (``退货 > 运费``), may be empty.
        page: 1-based page for PDFs, else None.
        chunk_id: the stored point's id.
        kb: the knowledge base's name.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    score: float
    source: str
    title: str = ""
    heading: str = ""
    page: int | None = None
    chunk_id: str
    kb: str

    def citation(self) -> str:
        """A short human-readable reference: ``source › heading, p. 3``."""
        ref = self.source
        if self.heading:
            ref += f" › {self.heading}"
        if self.page is not None:
            ref += f", p. {self.page}"
        return ref


@runtime_checkable
class Retriever(Protocol):
    """Finds passages for a query in one knowledge base, for one tenant and bot."""

    async def retrieve(self, query: str, *, k: int = 5) -> list[Passage]:
        """The best ``k`` passages, best first; empty when nothing clears the threshold."""
        ...


class Reranker(Protocol):
    """Optional hook that reorders (or filters) fused candidates, e.g. a cross-encoder."""

    async def __call__(self, query: str, passages: list[Passage]) -> list[Passage]:
        """Return the passages in the new order."""
        ...


def make_retriever(
    kb_settings: KBSettings,
    kb: str,
    *,
    tenant: str,
    bot: str,
    mode: SearchMode = "hybrid",
    reranker: Reranker | None = None,
    resources: KBResources | None = None,
) -> Retriever:
    """Build the retriever of knowledge base ``kb`` for one tenant and bot.

    Args:
        kb_settings: the ``[kb]`` settings (``KBSettings.resolve(data_dir)`` first, so that local
            mode uses ``<data_dir>/qdrant``).
        kb: the knowledge base's name.
        tenant: the tenant id, from server-side context only.
        bot: the bot id; the bot also sees knowledge ingested for all bots (``--bot`` omitted).
        mode: ``hybrid`` (default), ``dense`` or ``keyword``.
        reranker: optional hook applied to the fused candidates.
        resources: clients and models to share; None uses the process-wide default.

    Returns:
        A :class:`Retriever`. Nothing is opened until the first query.

    Example:
        >>> retriever = make_retriever(settings.kb, "faq", tenant="acme", bot="support")
    """
    from botcore.kb.resources import default_resources
    from botcore.kb.retriever import QdrantRetriever

    return QdrantRetriever(
        kb_settings, kb, tenant=tenant, bot=bot, mode=mode, reranker=reranker,
        resources=resources if resources is not None else default_resources(),
    )
