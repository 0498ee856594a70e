"""Long-lived, expensive objects of the knowledge base, shared within a process.

:class:`KBResources` holds the Qdrant clients (one per location: local mode locks its folder,
so a second client on the same path in the same process fails), the embedders (one per
embedding configuration: the local model maps ~90 MB of weights) and the keyword encoder
(jieba builds a 0.4 s dictionary). Build one at start-up and pass it in.

:func:`default_resources` is the one process-wide instance used when a caller passes none
(``make_retriever`` is called per turn by flows). It is documented module state on purpose:
without it, two retrievers on the same local folder in one process could not coexist.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cache

from botcore.kb.embeddings import Embedder, make_embedder
from botcore.kb.keywords import KeywordEncoder
from botcore.kb.settings import KBSettings
from botcore.kb.store import ClientPool, KBRepository, Scope, collection_name

__all__ = ["KBResources", "default_resources"]


@dataclass
class KBResources:
    """Clients, embedders and the keyword encoder, created on first use.

    Args:
        pool: the Qdrant client pool.
        embedders: embedders by configuration (tests preload one).
    """

    pool: ClientPool = field(default_factory=ClientPool)
    embedders: dict[str, Embedder] = field(default_factory=dict)
    _encoders: dict[tuple[float, float, float], KeywordEncoder] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def embedder(self, settings: KBSettings) -> Embedder:
        """The embedder for ``settings.embedding`` (built once per configuration)."""
        key = settings.embedding.model_dump_json()
        with self._guard:
            if key not in self.embedders:
                self.embedders[key] = make_embedder(settings.embedding)
            return self.embedders[key]

    def keywords(self, settings: KBSettings) -> KeywordEncoder:
        """The BM25 encoder for ``settings``' k1, b and average length."""
        key = (settings.bm25_k1, settings.bm25_b, settings.bm25_avg_len)
        with self._guard:
            if key not in self._encoders:
                self._encoders[key] = KeywordEncoder(*key)
            return self._encoders[key]

    def repository(self, settings: KBSettings, kb: str, scope: Scope) -> KBRepository:
        """A repository for knowledge base ``kb`` bound to ``scope``."""
        client, lock = self.pool.get(settings)
        index = self.pool.index(settings)
        return KBRepository(client, collection_name(settings, kb), scope, lock, index)

    def close(self) -> None:
        """Close the Qdrant clients."""
        self.pool.close()


@cache
def default_resources() -> KBResources:
    """The process-wide :class:`KBResources` (see the module docstring for why it exists)."""
    return KBResources()
