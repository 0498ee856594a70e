"""Qdrant storage: one client per location, and a repository bound to one tenant and bot.

The repository is the only code that talks to Qdrant about points. It is built with a
:class:`Scope` (tenant, bot) and adds the scope to **every** filter it sends, so no caller can
read, count or delete another tenant's points, and no id ever comes from model output
(reliability.md 5.3). Bot ``"*"`` marks knowledge shared by all bots of a tenant: a bot's
reads see its own points and the shared ones; writes and deletes touch exactly one scope.

Qdrant's local mode (``QdrantClient(path=...)``) locks its folder: one client per folder per
process, and no second process. :class:`ClientPool` keeps that one client per location, and
in local mode a :class:`~botcore.kb.local_index.LocalIndex` that answers searches with NumPy;
every point write through a repository is applied to that index in place (a failed write, or
a collection-wide one, invalidates what it can have changed).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import QdrantClient, models

from botcore.kb.errors import StoreError, StoreLockedError
from botcore.kb.local_index import DENSE, SHARED_BOT, SPARSE, LocalIndex
from botcore.kb.settings import KBSettings

__all__ = ["SHARED_BOT", "ClientPool", "DocumentInfo", "KBRepository", "Scope", "collection_name"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ID_NAMESPACE = uuid.UUID("0b5e3f3c-6a3e-4c57-9d38-6b6f7c6b6b61")


def _check_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise StoreError(f"{kind} {value!r}: use letters, digits, '_', '-', '.' (max 64)")
    return value


def collection_name(settings: KBSettings, kb: str) -> str:
    """The Qdrant collection of knowledge base ``kb``."""
    return settings.collection_prefix + _check_name("knowledge base", kb)


@dataclass(frozen=True)
class Scope:
    """Whose points: the tenant and the bot (``"*"``: all bots of the tenant)."""

    tenant: str
    bot: str = SHARED_BOT

    def __post_init__(self) -> None:
        _check_name("tenant", self.tenant)
        if self.bot != SHARED_BOT:
            _check_name("bot", self.bot)


@dataclass(frozen=True)
class DocumentInfo:
    """One ingested source as stored: its content hash, title and chunk count."""

    source: str
    doc_hash: str
    title: str
    chunks: int


@dataclass
class ClientPool:
    """One Qdrant client per location, created on first use, closed by :meth:`close`.

    Local mode is not safe for concurrent calls from threads, so each local client comes with
    a lock the repository holds around every call, and with its search index; a server client
    needs neither.
    """

    _clients: dict[str, tuple[QdrantClient, threading.RLock | None]] = field(
        default_factory=dict
    )
    _indexes: dict[str, LocalIndex] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def get(self, settings: KBSettings) -> tuple[QdrantClient, threading.RLock | None]:
        """The client (and its lock, local mode only) for ``settings``' location."""
        return self._get(settings)[:2]

    def index(self, settings: KBSettings) -> LocalIndex | None:
        """The search index of ``settings``' local-mode client; None for a server."""
        return self._get(settings)[2]

    def _get(
        self, settings: KBSettings
    ) -> tuple[QdrantClient, threading.RLock | None, LocalIndex | None]:
        where = settings.qdrant_url or f"path:{settings.storage_path().resolve()}"
        with self._guard:
            if where not in self._clients:
                client, lock = self._clients[where] = _open(settings)
                if lock is not None:
                    self._indexes[where] = LocalIndex(client)
            client, lock = self._clients[where]
            return client, lock, self._indexes.get(where)

    def close(self) -> None:
        """Close every client (releases local-mode folder locks)."""
        with self._guard:
            for client, _ in self._clients.values():
                client.close()
            self._clients.clear()
            self._indexes.clear()


def _open(settings: KBSettings) -> tuple[QdrantClient, threading.RLock | None]:
    if settings.qdrant_url:
        key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=key), None
    path = settings.storage_path()
    path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(path)), threading.RLock()
    except RuntimeError as exc:
        if "already accessed" not in str(exc):  # portalocker's lock failure, as Qdrant says it
            raise StoreError(f"Qdrant local storage {path}: {exc}") from exc
        raise StoreLockedError(
            str(path), f"Qdrant local storage {path} is in use by another process; stop it, "
            "or run a Qdrant server and set kb.qdrant_url"
        ) from exc


class KBRepository:
    """Scoped access to one knowledge base's collection.

    Args:
        client: a Qdrant client (from :class:`ClientPool`).
        collection: the collection name (:func:`collection_name`).
        scope: tenant and bot; added to every filter.
        lock: held around every call (local mode), or None.
        index: the local-mode search index (:mod:`botcore.kb.local_index`), or None.
    """

    def __init__(
        self, client: QdrantClient, collection: str, scope: Scope,
        lock: threading.RLock | None = None, index: LocalIndex | None = None,
    ) -> None:
        self._client = client
        self.collection = collection
        self.scope = scope
        self._lock = lock
        self._index = index

    @contextmanager
    def _writing(
        self, *, everyone: bool = False, ids: Sequence[models.ExtendedPointId] | None = None,
        selector: models.Filter | None = None,
    ) -> Iterator[list[models.ExtendedPointId] | None]:
        """Hold the lock around a write and keep the local index in step with it.

        A point write (``ids`` or ``selector``) that succeeded is applied to the index in
        place; a failed write, or one of the whole collection (``everyone``), invalidates.
        Yields the ids a ``selector`` matched when the index had to read them (the write can
        then use the ids instead of scanning for the filter a second time), else None.
        """
        with self._guard():
            index = self._index
            pending = None
            if index is not None and not everyone and (ids is not None or selector is not None):
                pending = index.before_write(self.collection, ids=ids, selector=selector)
            try:
                yield pending.ids if pending is not None and selector is not None else None
            except BaseException:
                if index is not None:
                    index.invalidate(self.collection, None if everyone else self._writer())
                raise
            if index is None:
                return
            if pending is None:
                index.invalidate(self.collection, None if everyone else self._writer())
                return
            try:
                index.after_write(pending)
            except BaseException:
                index.invalidate(self.collection)
                raise

    def _writer(self) -> tuple[str, str]:
        return self.scope.tenant, self.scope.bot

    def _guard(self) -> AbstractContextManager[Any]:
        return self._lock if self._lock is not None else nullcontext()

    def _owned(self, *extra: models.Condition) -> models.Filter:
        """Exactly this scope: for writes, deletes and listings."""
        return models.Filter(must=[
            models.FieldCondition(key="tenant", match=models.MatchValue(value=self.scope.tenant)),
            models.FieldCondition(key="bot", match=models.MatchValue(value=self.scope.bot)),
            *extra,
        ])

    def _visible(self) -> models.Filter:
        """What this scope may read: its tenant, its bot and the tenant's shared points."""
        bots = sorted({self.scope.bot, SHARED_BOT})
        return models.Filter(must=[
            models.FieldCondition(key="tenant", match=models.MatchValue(value=self.scope.tenant)),
            models.FieldCondition(key="bot", match=models.MatchAny(any=bots)),
        ])

    def exists(self) -> bool:
        """Whether the collection exists."""
        with self._guard():
            return bool(self._client.collection_exists(self.collection))

    def ensure_collection(self, dim: int) -> None:
        """Create the collection (dense + BM25 vectors, tenant index) or check its vector size."""
        with self._guard():
            if self._client.collection_exists(self.collection):
                info = self._client.get_collection(self.collection)
                vectors = info.config.params.vectors
                size = vectors[DENSE].size if isinstance(vectors, dict) else None
                if size != dim:
                    raise StoreError(
                        f"collection {self.collection} holds {size}-d vectors, the embedder "
                        f"makes {dim}-d: re-ingest into a new knowledge base"
                    )
                return
            with self._writing(everyone=True):
                self._create(dim)

    def _create(self, dim: int) -> None:
        self._client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        if self._lock is not None:
            return  # local mode scans everything; it only warns about payload indexes
        tenant_index = models.KeywordIndexParams(
            type=models.KeywordIndexType.KEYWORD, is_tenant=True
        )
        for key, schema in (("tenant", tenant_index), ("bot", models.PayloadSchemaType.KEYWORD),
                            ("source", models.PayloadSchemaType.KEYWORD)):
            self._client.create_payload_index(self.collection, key, field_schema=schema)

    def point_id(self, source: str, doc_hash: str, position: int) -> str:
        """Deterministic id: re-ingesting the same version overwrites, never duplicates."""
        key = "\x1f".join([self.scope.tenant, self.scope.bot, source, doc_hash, str(position)])
        return str(uuid.uuid5(_ID_NAMESPACE, key))

    def upsert(self, points: Sequence[models.PointStruct]) -> None:
        """Write points; the scope's tenant and bot overwrite whatever the payload says."""
        stamped = [
            p.model_copy(update={"payload": {**(p.payload or {}), "tenant": self.scope.tenant,
                                             "bot": self.scope.bot}})
            for p in points
        ]
        with self._writing(ids=[p.id for p in stamped]):
            self._client.upsert(self.collection, points=stamped, wait=True)

    def documents(self) -> list[DocumentInfo]:
        """Every source of this scope with its hash and chunk count."""
        found: dict[tuple[str, str], list[Any]] = {}
        for payload in self._scroll(self._owned(), ["source", "doc_hash", "title"]):
            key = (str(payload.get("source")), str(payload.get("doc_hash")))
            found.setdefault(key, [payload.get("title") or "", 0])[1] += 1
        docs = [DocumentInfo(s, h, str(t), int(n)) for (s, h), (t, n) in found.items()]
        return sorted(docs, key=lambda doc: (doc.source, doc.doc_hash))

    def source_hashes(self, source: str) -> set[str]:
        """The content hashes stored for ``source`` (normally one)."""
        cond = models.FieldCondition(key="source", match=models.MatchValue(value=source))
        return {str(p.get("doc_hash")) for p in self._scroll(self._owned(cond), ["doc_hash"])}

    def _scroll(self, flt: models.Filter, fields: list[str]) -> Iterator[dict[str, Any]]:
        if not self.exists():
            return
        offset: Any = None
        while True:
            with self._guard():
                points, offset = self._client.scroll(
                    self.collection, scroll_filter=flt, limit=1000, offset=offset,
                    with_payload=fields, with_vectors=False,
                )
            for point in points:
                yield dict(point.payload or {})
            if offset is None:
                return

    def delete_source(
        self, source: str, *, keep_hash: str | None = None, only_hash: str | None = None
    ) -> None:
        """Delete a source's points: all, all but version ``keep_hash``, or only ``only_hash``."""
        conditions: list[models.Condition] = [
            models.FieldCondition(key="source", match=models.MatchValue(value=source))
        ]
        if only_hash is not None:
            conditions.append(
                models.FieldCondition(key="doc_hash", match=models.MatchValue(value=only_hash))
            )
        flt = self._owned(*conditions)
        if keep_hash is not None:
            flt.must_not = [
                models.FieldCondition(key="doc_hash", match=models.MatchValue(value=keep_hash))
            ]
        self._delete(flt)

    def delete_all(self) -> None:
        """Delete every point of this scope (other tenants and bots are untouched)."""
        self._delete(self._owned())

    def _delete(self, flt: models.Filter) -> None:
        if not self.exists():
            return
        with self._writing(selector=flt) as found:
            # The index already scanned for the filter under this lock: delete those ids
            # rather than make Qdrant scan again (a local-mode filter scan is O(points)).
            selector: models.PointIdsList | models.FilterSelector = (
                models.PointIdsList(points=found) if found is not None
                else models.FilterSelector(filter=flt))
            if found is None or found:
                self._client.delete(self.collection, points_selector=selector)

    def drop_collection(self) -> None:
        """Drop the whole collection: **every tenant's** points."""
        with self._writing(everyone=True):
            self._client.delete_collection(self.collection)

    def search(
        self, dense: list[float] | None, sparse: models.SparseVector | None, *,
        limit: int, min_score: float | None = None,
    ) -> tuple[list[models.ScoredPoint], list[models.ScoredPoint]]:
        """Dense and keyword hits within this scope's visible points.

        Local mode answers from the process-local index (same hits as Qdrant's search, far
        faster); a server answers with :meth:`qdrant_search`.
        """
        if self._index is None:
            return self.qdrant_search(dense, sparse, limit=limit, min_score=min_score)
        with self._guard():
            if not self._client.collection_exists(self.collection):
                return [], []
            return self._index.search(
                self.collection, (self.scope.tenant, self.scope.bot), self._visible(),
                dense=dense, sparse=sparse, limit=limit, min_score=min_score,
            )

    def qdrant_search(
        self, dense: list[float] | None, sparse: models.SparseVector | None, *,
        limit: int, min_score: float | None = None,
    ) -> tuple[list[models.ScoredPoint], list[models.ScoredPoint]]:
        """Dense and keyword hits by Qdrant's own search, in one round trip."""
        flt = self._visible()
        requests: list[models.QueryRequest] = []
        if dense is not None:
            requests.append(models.QueryRequest(query=dense, using=DENSE, filter=flt, limit=limit,
                                                score_threshold=min_score, with_payload=True))
        if sparse is not None and sparse.indices:
            requests.append(models.QueryRequest(query=sparse, using=SPARSE, filter=flt,
                                                limit=limit, with_payload=True))
        if not requests or not self.exists():
            return [], []
        with self._guard():
            answers = self._client.query_batch_points(self.collection, requests=requests)
        lists = [a.points for a in answers]
        dense_hits = lists.pop(0) if dense is not None else []
        return dense_hits, (lists[0] if lists else [])
