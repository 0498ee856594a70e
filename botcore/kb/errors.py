"""Errors of the knowledge base, under the botcore tree::

    BotError
    └── KnowledgeBaseError                 a knowledge-base operation failed
        ├── IngestError(source, reason)    one file or query could not be ingested
        ├── EmbeddingError                 the embedding model or API failed
        └── StoreError                     Qdrant refused or is unreachable / locked
            └── StoreLockedError(path)     local mode: another process holds the folder
"""

from __future__ import annotations

from botcore.errors import BotError

__all__ = ["EmbeddingError", "IngestError", "KnowledgeBaseError", "StoreError",
           "StoreLockedError"]


class KnowledgeBaseError(BotError):
    """Root of the knowledge-base errors."""


class IngestError(KnowledgeBaseError):
    """One source could not be ingested; the others go on.

    Args:
        source: the file path or SQL source name.
        reason: short, human-readable (shown in the ingest summary).
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class EmbeddingError(KnowledgeBaseError):
    """The embedding model or API failed."""


class StoreError(KnowledgeBaseError):
    """The vector store failed (unreachable, locked by another process, wrong vector size)."""


class StoreLockedError(StoreError):
    """Qdrant local mode: another process (e.g. a running botcore worker) holds the folder.

    Args:
        path: the local-mode folder.
        message: what to do about it.
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)
