"""KB jobs a running worker does for the CLI: ingest, delete and search in its own process.

Qdrant's local mode lets one process open its folder. While ``botcore serve`` runs, that is
the worker (its retrievers hold the client), so ``botcore kb ingest`` cannot open the folder;
it hands the job to the worker instead (:mod:`botcore.kb.remote`, the Celery task in
:mod:`botcore.queue.kb_task`). Only JSON crosses the queue (:class:`KBJob`: absolute file paths
on the same machine, kb, tenant, bot, flags); the worker runs :func:`execute` with its
process-wide :func:`~botcore.kb.resources.default_resources`, so its writes invalidate the very
local index its retrievers search, and publishes :class:`JobState` to Redis under
:func:`job_key` for the CLI to follow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from botcore.kb.errors import KnowledgeBaseError, StoreError
from botcore.kb.ingest import Ingestor, discover
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import SHARED_BOT, Scope
from botcore.keys import KeyBuilder
from botcore.retrieval import SearchMode, make_retriever

__all__ = ["JOB_TTL", "JobState", "KBJob", "execute", "job_key"]

#: Seconds a job's state stays in Redis after its last update.
JOB_TTL = 3600


def job_key(keys: KeyBuilder, job_id: str) -> str:
    """The Redis key of one KB job's state (a JSON string): ``KeyBuilder.kb_job``."""
    return keys.kb_job(job_id)


class KBJob(BaseModel):
    """One job for the worker; JSON only.

    Attributes:
        id: random id, names the state key.
        op: ``ingest`` (``paths``, ``sync``), ``delete`` (``source``, ``drop``) or ``search``.
        storage: the local-mode folder the CLI meant; the worker refuses another one.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    op: Literal["ingest", "delete", "search"]
    kb: str
    tenant: str = "default"
    bot: str = SHARED_BOT
    storage: str
    paths: list[str] = Field(default_factory=list)
    sync: bool = False
    source: str | None = None
    drop: bool = False
    query: str = ""
    k: int = Field(5, ge=1, le=100)
    mode: SearchMode = "hybrid"


class JobState(BaseModel):
    """Where a job is: what the worker writes to Redis and the CLI shows.

    Attributes:
        state: ``queued`` (sent), ``waiting`` (behind another KB job), ``running``, ``done``,
            ``failed`` (``error`` says why).
        done / total / current: progress of an ingest (sources).
        outcomes: an ingest's per-source outcomes (``source, status, chunks, reason``).
        passages: a search's passages (:class:`~botcore.retrieval.Passage` fields).
        message: what a delete did.
    """

    state: Literal["queued", "waiting", "running", "done", "failed"] = "queued"
    done: int = 0
    total: int = 0
    current: str = ""
    outcomes: list[dict[str, Any]] = Field(default_factory=list)
    passages: list[dict[str, Any]] = Field(default_factory=list)
    message: str = ""
    error: str = ""

    @property
    def finished(self) -> bool:
        """True once the job is done or failed."""
        return self.state in ("done", "failed")


async def execute(job: KBJob, settings: KBSettings, resources: KBResources,
                  publish: Callable[[JobState], None]) -> JobState:
    """Run ``job`` here; ``publish`` gets every state change. Never raises for a KB error."""
    state = JobState(state="running")
    publish(state)
    try:
        if str(settings.storage_path().resolve()) != job.storage:
            raise StoreError(f"this worker's knowledge bases are in {settings.storage_path()}, "
                             f"not {job.storage}: use the same botcore.toml and data_dir")
        if job.op == "ingest":
            await _ingest(job, settings, resources, state, publish)
        elif job.op == "delete":
            state.message = _delete(job, settings, resources)
        else:
            retriever = make_retriever(settings, job.kb, tenant=job.tenant, bot=job.bot,
                                       mode=job.mode, resources=resources)
            state.passages = [p.model_dump() for p in await retriever.retrieve(job.query,
                                                                                k=job.k)]
        state.state = "done"
    except KnowledgeBaseError as exc:
        state.state, state.error = "failed", str(exc)
    except Exception as exc:  # reported to the CLI; the worker goes on
        state.state, state.error = "failed", f"{type(exc).__name__}: {exc}"
    publish(state)
    return state


async def _ingest(job: KBJob, settings: KBSettings, resources: KBResources, state: JobState,
                  publish: Callable[[JobState], None]) -> None:
    paths = [Path(p) for p in job.paths]
    state.total = len(discover(paths)[0])
    publish(state)

    def progress(source: str) -> None:
        state.done += 1
        state.current = source
        publish(state)

    ingestor = Ingestor(settings, job.kb, Scope(job.tenant, job.bot), resources,
                        progress=progress)
    report = await ingestor.ingest_paths(paths, sync=job.sync)
    state.outcomes = [{"source": o.source, "status": o.status, "chunks": o.chunks,
                       "reason": o.reason} for o in report.outcomes]


def _delete(job: KBJob, settings: KBSettings, resources: KBResources) -> str:
    repo = resources.repository(settings, job.kb, Scope(job.tenant, job.bot))
    if job.drop:
        repo.drop_collection()
        return f"dropped {repo.collection}"
    if job.source:
        repo.delete_source(job.source)
        return f"deleted {job.source} from {job.kb} ({job.tenant}/{job.bot})"
    repo.delete_all()
    return f"deleted every document of {job.kb} for {job.tenant}/{job.bot}"
