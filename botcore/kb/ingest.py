"""Ingestion: files and SQL rows into a knowledge base, incrementally and atomically per source.

Each source (a file, or one SQL query) is stored under a content hash. Re-ingesting skips a
source whose hash is unchanged; a changed source's new points are written **first**, then the
old version's points are deleted, so a failure at any step leaves the previous version
searchable (a failed write is rolled back). ``sync=True`` also deletes sources under the given
folders that no longer exist. A bad source is reported with its reason; the others go on.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from qdrant_client import models

from botcore.kb.chunking import Chunk, Chunker
from botcore.kb.errors import IngestError, KnowledgeBaseError
from botcore.kb.loaders import LOADERS, LoadedDocument, Section, load_file
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.sql import fetch_rows, render_rows, sql_source_name
from botcore.kb.store import KBRepository, Scope

__all__ = ["IngestOutcome", "IngestReport", "Ingestor", "SourceFile", "Status", "discover",
           "folder_name", "source_name"]

Status = Literal["added", "updated", "unchanged", "removed", "skipped", "failed"]
_BATCH = 256


@dataclass(frozen=True)
class IngestOutcome:
    """What happened to one source."""

    source: str
    status: Status
    chunks: int = 0
    reason: str = ""


@dataclass
class IngestReport:
    """Per-source outcomes of one ingest run."""

    outcomes: list[IngestOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[IngestOutcome]:
        """The sources that could not be ingested."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when nothing failed (the CLI exits 0)."""
        return not self.failed

    def count(self, status: Status) -> int:
        """How many sources ended with ``status``."""
        return sum(1 for o in self.outcomes if o.status == status)


def discover(paths: Iterable[Path]) -> tuple[list[SourceFile], list[IngestOutcome]]:
    """Files to ingest under ``paths``; unknown formats inside folders are reported as skipped.

    A file named explicitly is always returned (a bad one then fails with its reason).
    """
    files: list[SourceFile] = []
    skipped: list[IngestOutcome] = []
    for path in paths:
        if not path.is_dir():
            files.append(SourceFile(path, source_name(path)))
            continue
        for found in sorted(p for p in path.rglob("*") if p.is_file()):
            if any(part.startswith(".") for part in found.relative_to(path).parts):
                continue
            name = source_name(found, root=path)
            if found.suffix.lower() in LOADERS:
                files.append(SourceFile(found, name))
            else:
                skipped.append(IngestOutcome(name, "skipped", reason="unknown format"))
    return files, skipped


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest and its source name (:func:`source_name`)."""

    path: Path
    source: str


def source_name(path: Path, root: Path | None = None) -> str:
    """A file's source name, the same from any working directory and free of server paths.

    A file found under a folder given on the command line is named by its path relative to
    that folder, prefixed with the folder's own name (``docs/faq.csv`` for ``docs/`` as well
    as ``/srv/kb/docs/``); a file given by itself is named by its file name (``faq.csv``).

    Args:
        path: the file.
        root: the folder argument the file was found under, or None for a file argument.
    """
    if root is None:
        return _absolute(path).name
    relative = path.relative_to(root).as_posix()
    folder = folder_name(root)
    return f"{folder}/{relative}" if folder else relative


def folder_name(root: Path) -> str:
    """The source-name prefix of the files under folder ``root`` (``docs``; ``""`` for ``/``)."""
    return _absolute(root).name


def _absolute(path: Path) -> Path:
    """``path`` made absolute and normalised (``..`` removed), symlinks left as they are."""
    return Path(os.path.abspath(path))


class Ingestor:
    """Writes sources into one knowledge base for one scope.

    Args:
        settings: the ``[kb]`` settings.
        kb: the knowledge base's name.
        scope: tenant and bot the points belong to.
        resources: shared clients and models.
        progress: called with each source's name when it is done (drives the progress bar).
    """

    def __init__(
        self, settings: KBSettings, kb: str, scope: Scope, resources: KBResources,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self.kb = kb
        self._resources = resources
        self._repo: KBRepository = resources.repository(settings, kb, scope)
        self._chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
        self._progress = progress or (lambda _source: None)
        embedder = resources.embedder(settings)
        fingerprint = f"{settings.chunk_size}/{settings.chunk_overlap}/{embedder.name}"
        self._fingerprint = fingerprint.encode()

    async def ingest_paths(self, paths: Sequence[Path], *, sync: bool = False) -> IngestReport:
        """Ingest files and folders (recursively); ``sync`` removes vanished sources."""
        files, skipped = discover(paths)
        report = IngestReport(list(skipped))
        for file in files:
            report.outcomes.append(await self._ingest_file(file))
            self._progress(file.source)
        if sync:
            roots = [p for p in paths if p.is_dir()]
            seen = {o.source for o in report.outcomes}
            report.outcomes.extend(await self._remove_vanished(roots, seen))
        return report

    async def ingest_sql(
        self, url: str, query: str, template: str, *, name: str | None = None
    ) -> IngestReport:
        """Ingest the rows of ``query``, each rendered by ``template`` (``str.format`` fields)."""
        source = name or sql_source_name(url, query)
        try:
            rows = await asyncio.to_thread(fetch_rows, url, query)
            texts = render_rows(rows, template)
            document = LoadedDocument(source, [Section(text) for text in texts])
            digest = self._hash("\x1e".join(texts).encode())
            outcome = await self._store(source, digest, self._chunker.split(document))
        except IngestError as exc:
            outcome = IngestOutcome(source, "failed", reason=exc.reason)
        except KnowledgeBaseError as exc:
            outcome = IngestOutcome(source, "failed", reason=str(exc))
        self._progress(source)
        return IngestReport([outcome])

    def _hash(self, data: bytes) -> str:
        return hashlib.sha256(self._fingerprint + b"\0" + data).hexdigest()[:32]

    async def _ingest_file(self, file: SourceFile) -> IngestOutcome:
        source, path = file.source, file.path
        try:
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError as exc:
                raise IngestError(source, f"cannot read ({exc.strerror or exc})") from None
            digest = self._hash(data)
            if await asyncio.to_thread(self._repo.source_hashes, source) == {digest}:
                return IngestOutcome(source, "unchanged")
            document = await asyncio.to_thread(load_file, path, data)
            return await self._store(source, digest, self._chunker.split(document))
        except IngestError as exc:
            return IngestOutcome(source, "failed", reason=exc.reason)
        except KnowledgeBaseError as exc:
            return IngestOutcome(source, "failed", reason=str(exc))

    async def _store(self, source: str, digest: str, chunks: list[Chunk]) -> IngestOutcome:
        if not chunks:
            raise IngestError(source, "no text to index")
        old = await asyncio.to_thread(self._repo.source_hashes, source)
        if old == {digest}:
            return IngestOutcome(source, "unchanged")
        points, dim = await self._points(source, digest, chunks)
        await asyncio.to_thread(self._repo.ensure_collection, dim)
        try:
            for start in range(0, len(points), _BATCH):
                await asyncio.to_thread(self._repo.upsert, points[start : start + _BATCH])
        except Exception as exc:
            if digest not in old:  # roll back the partial new version; the old one is intact
                await asyncio.to_thread(self._repo.delete_source, source, only_hash=digest)
            raise KnowledgeBaseError(f"write failed: {type(exc).__name__}: {exc}") from exc
        await asyncio.to_thread(self._repo.delete_source, source, keep_hash=digest)
        return IngestOutcome(source, "updated" if old else "added", len(points))

    async def _points(
        self, source: str, digest: str, chunks: list[Chunk]
    ) -> tuple[list[models.PointStruct], int]:
        dense = await self._resources.embedder(self._settings).embed_documents(
            [c.embed_text() for c in chunks]
        )
        encoder = self._resources.keywords(self._settings)
        sparse = await asyncio.to_thread(lambda: [encoder.document(c.embed_text()) for c in chunks])
        now = datetime.now(UTC).isoformat(timespec="seconds")
        points = [
            models.PointStruct(
                id=self._repo.point_id(source, digest, chunk.position),
                vector={"dense": vector, "bm25": keywords},
                payload={"text": chunk.text, "source": source, "title": chunk.title,
                         "heading": chunk.heading, "page": chunk.page,
                         "position": chunk.position, "doc_hash": digest, "kb": self.kb,
                         "ingested_at": now},
            )
            for chunk, vector, keywords in zip(chunks, dense, sparse, strict=True)
        ]
        return points, len(dense[0])

    async def _remove_vanished(self, roots: list[Path], seen: set[str]) -> list[IngestOutcome]:
        """Delete stored sources under ``roots`` that were not seen in this run.

        Besides the sources named ``<folder>/...``, absolute source names under a root (how
        releases before stable names stored files outside the working directory) count as
        inside it, so ``--sync`` also removes those old copies.
        """
        out: list[IngestOutcome] = []
        stored = await asyncio.to_thread(self._repo.documents)
        prefixes = [f"{folder_name(r)}/" for r in roots if folder_name(r)]
        legacy = [where.as_posix().rstrip("/") + "/"
                  for r in roots for where in (_absolute(r), r.resolve())]
        for doc in stored:
            inside = any(doc.source.startswith(prefix) for prefix in prefixes) or any(
                doc.source.startswith(old) for old in legacy)
            if inside and doc.source not in seen:
                await asyncio.to_thread(self._repo.delete_source, doc.source)
                out.append(IngestOutcome(doc.source, "removed", doc.chunks))
        return out
