"""``botcore kb ...``: ingest, list, delete, search and evaluate knowledge bases.

The lead mounts :data:`kb_app` with ``app.add_typer(kb_app, name="kb")``. Settings come from
``botcore.settings.load_settings()`` (its ``kb`` table; defaults until that field exists).
A :class:`~botcore.kb.resources.KBResources` passed as the Typer context object is used
instead of a fresh one (tests share one embedding model that way).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from botcore.errors import BotError
from botcore.kb.errors import StoreError, StoreLockedError
from botcore.kb.ingest import Ingestor, IngestOutcome, IngestReport, discover
from botcore.kb.jobs import JobState, KBJob
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import SHARED_BOT, Scope
from botcore.retrieval import Passage, SearchMode, make_retriever

if TYPE_CHECKING:
    from botcore.settings import Settings

__all__ = ["kb_app"]

kb_app = typer.Typer(
    help="Knowledge bases: ingest documents, search, evaluate.", no_args_is_help=True
)

KB = Annotated[str, typer.Option("--kb", help="knowledge base name")]
Tenant = Annotated[str, typer.Option("--tenant", help="tenant id")]
Bot = Annotated[str, typer.Option("--bot", help="bot id; '*' (default): every bot of the tenant")]
Config = Annotated[Path | None, typer.Option("--config", help="botcore.toml to read")]
console = Console(highlight=False)


def load_kb_settings(config: Path | None = None) -> KBSettings:
    """The ``[kb]`` settings, with the local-mode folder under ``data_dir``."""
    return _load(config)[1]


def _load(config: Path | None) -> tuple[Settings, KBSettings]:
    from botcore.settings import load_settings

    settings = load_settings(config)
    kb = getattr(settings, "kb", None)
    kb_settings = kb if isinstance(kb, KBSettings) else KBSettings()
    return settings, kb_settings.resolve(settings.data_dir)


@contextmanager
def _resources(ctx: typer.Context) -> Iterator[KBResources]:
    if isinstance(ctx.obj, KBResources):
        yield ctx.obj
        return
    resources = KBResources()
    try:
        yield resources
    finally:
        resources.close()


def _run(ctx: typer.Context, job: Callable[[KBResources], Any],
         remote: Callable[[StoreLockedError], Any] | None = None) -> Any:
    """Run ``job`` (sync or async) with resources; BotErrors become exit code 2.

    When the local-mode folder is locked by another process, ``remote`` (if given) runs
    instead: it hands the job to the running worker that holds the folder.
    """
    try:
        with _resources(ctx) as resources:
            try:
                result = job(resources)
                return asyncio.run(result) if asyncio.iscoroutine(result) else result
            except StoreLockedError as locked:
                if remote is None:
                    raise
                return remote(locked)
    except BotError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _job(settings: KBSettings, op: str, kb: str, tenant: str, bot: str, **fields: Any) -> KBJob:
    from botcore.kb.remote import new_job_id

    Scope(tenant, bot)  # a bad name fails here, not in the worker
    return KBJob.model_validate({
        "id": new_job_id(), "op": op, "kb": kb, "tenant": tenant, "bot": bot,
        "storage": str(settings.storage_path().resolve()), **fields})


def _hand_over(settings: Settings, job: KBJob, locked: StoreLockedError) -> JobState:
    """Run ``job`` in the running worker with a progress line; its failure is a StoreError."""
    from botcore.kb.remote import hand_over

    waiting = {"queued": "handing the job to the running botcore worker",
               "waiting": "the worker finishes another kb job first"}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(waiting["queued"], total=None)

        def show(state: JobState) -> None:
            text = waiting.get(state.state) or f"worker: {state.current or job.op}"
            bar.update(task, description=text, completed=state.done,
                       total=state.total or None)

        state = asyncio.run(hand_over(settings, job, locked, show))
    if state.state == "failed":
        raise StoreError(f"the worker could not run the job: {state.error}")
    console.print("[dim]the local folder is held by a running botcore: "
                  "done by its worker[/dim]")
    return state


def _print_report(report: IngestReport) -> None:
    table = Table("source", "status", "chunks", "reason", title="ingest summary")
    for o in report.outcomes:
        style = {"failed": "red", "skipped": "yellow", "unchanged": "dim"}.get(o.status, "green")
        table.add_row(o.source, f"[{style}]{o.status}[/{style}]", str(o.chunks), o.reason)
    console.print(table)
    counts = ", ".join(
        f"{status} {report.count(status)}"
        for status in ("added", "updated", "unchanged", "removed", "skipped", "failed")
        if report.count(status)
    )
    console.print(counts or "nothing to do")


@kb_app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(help="files and folders")] = None,
    kb: KB = "default", tenant: Tenant = "default", bot: Bot = SHARED_BOT,
    sync: Annotated[bool, typer.Option(help="delete sources gone from the folders")] = False,
    sql: Annotated[str | None, typer.Option(help="SQLAlchemy URL of business data")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query (with --sql)")] = None,
    template: Annotated[str | None, typer.Option(help="row template: '{name}: {price}'")] = None,
    name: Annotated[str | None, typer.Option(help="source name of the SQL rows")] = None,
    config: Config = None,
) -> None:
    """Ingest files (txt, md, html, pdf, docx, xlsx/csv FAQ) or SQL rows into a knowledge base."""
    if not paths and not sql:
        raise typer.BadParameter("give PATH... or --sql with --query and --template")
    if sql and not (query and template):
        raise typer.BadParameter("--sql needs --query and --template")
    full, settings = _load(config)

    async def job(resources: KBResources) -> IngestReport:
        resources.pool.get(settings)  # local mode: fails at once when another process holds it
        report = IngestReport()
        total = len(discover(paths or [])[0]) + (1 if sql else 0)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            task = bar.add_task("ingesting", total=total)
            ingestor = Ingestor(settings, kb, Scope(tenant, bot), resources,
                                progress=lambda src: bar.update(task, advance=1, description=src))
            if paths:
                report.outcomes += (await ingestor.ingest_paths(paths, sync=sync)).outcomes
            if sql and query and template:
                sql_report = await ingestor.ingest_sql(sql, query, template, name=name)
                report.outcomes += sql_report.outcomes
        return report

    def remote(locked: StoreLockedError) -> IngestReport:
        if sql:
            raise StoreLockedError(locked.path, f"{locked}; --sql is not handed to the running "
                                   "worker (the URL would cross the queue)")
        absolute = [os.path.abspath(p) for p in paths or []]
        state = _hand_over(full, _job(settings, "ingest", kb, tenant, bot, paths=absolute,
                                      sync=sync), locked)
        return IngestReport([IngestOutcome(**o) for o in state.outcomes])

    report: IngestReport = _run(ctx, job, remote)
    _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


@kb_app.command("list")
def list_(
    ctx: typer.Context, kb: Annotated[str | None, typer.Option("--kb")] = None,
    tenant: Tenant = "default", bot: Bot = SHARED_BOT, config: Config = None,
) -> None:
    """List knowledge bases, or the documents of one (``--kb``) for a tenant and bot."""
    settings = load_kb_settings(config)

    def job(resources: KBResources) -> None:
        if kb is None:
            client, _ = resources.pool.get(settings)
            names = [c.name for c in client.get_collections().collections]
            prefix = settings.collection_prefix
            for found in sorted(n[len(prefix):] for n in names if n.startswith(prefix)):
                console.print(found)
            return
        docs = resources.repository(settings, kb, Scope(tenant, bot)).documents()
        table = Table("source", "title", "chunks", "hash", title=f"{kb} ({tenant}/{bot})")
        for doc in docs:
            table.add_row(doc.source, doc.title, str(doc.chunks), doc.doc_hash[:12])
        console.print(table)

    _run(ctx, job)


@kb_app.command()
def delete(
    ctx: typer.Context, kb: KB, tenant: Tenant = "default", bot: Bot = SHARED_BOT,
    source: Annotated[str | None, typer.Option(help="delete only this source")] = None,
    drop: Annotated[bool, typer.Option(help="drop the whole collection, ALL tenants")] = False,
    config: Config = None,
) -> None:
    """Delete a knowledge base's documents for a tenant and bot (or one source)."""
    full, settings = _load(config)

    def job(resources: KBResources) -> None:
        repo = resources.repository(settings, kb, Scope(tenant, bot))
        if drop:
            repo.drop_collection()
            console.print(f"dropped {repo.collection}")
        elif source:
            repo.delete_source(source)
            console.print(f"deleted {source} from {kb} ({tenant}/{bot})")
        else:
            repo.delete_all()
            console.print(f"deleted every document of {kb} for {tenant}/{bot}")

    def remote(locked: StoreLockedError) -> None:
        job = _job(settings, "delete", kb, tenant, bot, source=source, drop=drop)
        console.print(_hand_over(full, job, locked).message)

    _run(ctx, job, remote)


@kb_app.command()
def search(
    ctx: typer.Context, query: Annotated[str, typer.Argument(help="the question")],
    kb: KB = "default", tenant: Tenant = "default", bot: Bot = SHARED_BOT,
    k: Annotated[int, typer.Option("-k", help="passages to show")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword")] = "hybrid",
    config: Config = None,
) -> None:
    """Search a knowledge base and print hits with scores and sources."""
    full, settings = _load(config)
    search_mode = _mode(mode)

    async def job(resources: KBResources) -> list[Passage]:
        resources.pool.get(settings)
        retriever = make_retriever(settings, kb, tenant=tenant, bot=bot, mode=search_mode,
                                   resources=resources)
        return await retriever.retrieve(query, k=k)

    def remote(locked: StoreLockedError) -> list[Passage]:
        job = _job(settings, "search", kb, tenant, bot, query=query, k=k, mode=search_mode)
        return [Passage.model_validate(p) for p in _hand_over(full, job, locked).passages]

    passages: list[Passage] = _run(ctx, job, remote)
    if not passages:
        console.print("no passage above the score threshold")
    for n, p in enumerate(passages, 1):
        console.print(f"[bold]{n}. {p.score:.4f}[/bold]  [cyan]{p.citation()}[/cyan]")
        console.print(f"   {' '.join(p.text.split())[:300]}")


def _mode(value: str) -> SearchMode:
    modes: dict[str, SearchMode] = {"hybrid": "hybrid", "dense": "dense", "keyword": "keyword"}
    if value not in modes:
        raise typer.BadParameter(f"mode: one of {sorted(modes)}")
    return modes[value]


@kb_app.command("eval")
def eval_(
    ctx: typer.Context, qa: Annotated[Path, typer.Argument(help="QA file (JSON lines)")],
    kb: KB = "default", tenant: Tenant = "default", bot: Bot = SHARED_BOT,
    min_hit5: Annotated[float, typer.Option(help="exit 1 when hybrid hit@5 is lower")] = 0.0,
    config: Config = None,
) -> None:
    """Print hit@1, hit@5, MRR and latency of dense, keyword and hybrid search."""
    from botcore.kb.evaluate import EvalResult, evaluate, load_qa

    settings = load_kb_settings(config)

    async def job(resources: KBResources) -> list[EvalResult]:
        items = load_qa(qa)
        retrievers = {
            m: make_retriever(settings, kb, tenant=tenant, bot=bot, mode=m, resources=resources)
            for m in ("dense", "keyword", "hybrid")
        }
        return await evaluate(retrievers, items, k=5)

    results: list[EvalResult] = _run(ctx, job)
    table = Table("mode", "questions", "hit@1", "hit@5", "MRR", "p50 ms", "p99 ms", title=str(qa))
    for r in results:
        table.add_row(r.mode, str(r.questions), f"{r.hit_at_1:.3f}", f"{r.hit_at_5:.3f}",
                      f"{r.mrr:.3f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}")
    console.print(table)
    hybrid = results[-1]
    for miss in hybrid.misses:
        console.print(f"[yellow]hybrid miss:[/yellow] {miss}")
    if hybrid.hit_at_5 < min_hit5:
        raise typer.Exit(1)
