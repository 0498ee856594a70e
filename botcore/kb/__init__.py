"""Knowledge bases: ingest documents into Qdrant and retrieve passages for flows.

Heavy modules (Qdrant, jieba, the embedding model, file parsers) load only when used; importing
this package does no I/O. Flows use :mod:`botcore.retrieval`; the CLI is :mod:`botcore.kb.cli`.
"""

from botcore.kb.errors import EmbeddingError, IngestError, KnowledgeBaseError, StoreError
from botcore.kb.settings import EmbeddingSettings, KBSettings

__all__ = [
    "EmbeddingError",
    "EmbeddingSettings",
    "IngestError",
    "KBSettings",
    "KnowledgeBaseError",
    "StoreError",
]
