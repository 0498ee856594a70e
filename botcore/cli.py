"""The ``botcore`` command line (Typer)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from botcore.errors import ConfigError
from botcore.settings import Settings, load_settings

__all__ = ["build_cli", "main"]

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file "
                                                "(default: $BOTCORE_CONFIG or ./botcore.toml)")]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    # Like uvicorn's --app-dir and celery: bot modules ('examples.support_bot:app') are
    # imported relative to the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def _version(value: bool) -> None:
    if value:
        from botcore import __version__

        typer.echo(f"botcore {__version__}")
        raise typer.Exit()


def build_cli() -> typer.Typer:
    """The Typer app (built on call: nothing runs at import)."""
    cli = typer.Typer(help="botcore: LLM chatbots in WeCom, DingTalk, Feishu, Telegram and "
                      "the web.", no_args_is_help=True, add_completion=False)

    @cli.callback()
    def root(version: Annotated[bool, typer.Option("--version", callback=_version,
                                                   is_eager=True,
                                                   help="Print the version.")] = False) -> None:
        """botcore command line."""

    cli.command()(serve)
    cli.command()(worker)
    cli.command()(chat)
    cli.add_typer(_inbox_cli(), name="inbox", help="Inspect and repair the durable inbox.")
    try:
        from botcore.kb.cli import kb_app
    except ImportError:  # the knowledge-base extras are not installed
        pass
    else:
        cli.add_typer(kb_app, name="kb", help="Manage knowledge bases.")
    return cli


def serve(config: ConfigOpt = None,
          host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
          port: Annotated[int | None, typer.Option(help="Port.")] = None,
          worker: Annotated[bool, typer.Option("--worker/--no-worker",
                                               help="Start a worker beside the server "
                                                    "(embedded mode).")] = True) -> None:
    """Serve webhooks, the web chat and the API. Without a Redis URL, start Redis and a
    worker too (embedded mode)."""
    import uvicorn

    from botcore.embedded import embedded_services
    from botcore.logging import configure_logging
    from botcore.web.app import create_app

    settings = _settings(config, host=host, port=port)
    configure_logging(settings.log_level, settings.log_json)
    # uvicorn re-raises the SIGTERM it caught once it has shut down; turn it into SystemExit
    # so that the embedded worker and Redis below are stopped too (in that order).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    embedded = worker and not settings.redis_url
    try:
        with embedded_services(settings, config=config, with_worker=embedded) as url:
            app = create_app(settings, redis_url=url)
            typer.echo(f"botcore serving on http://{settings.host}:{settings.port}  "
                       f"(web chat: http://{settings.host}:{settings.port}/chat)")
            uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                        loop="auto", http="auto")
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def worker(config: ConfigOpt = None,
           concurrency: Annotated[int | None, typer.Option(help="Pool processes.")] = None,
           pool: Annotated[str, typer.Option(help="prefork or solo.")] = "prefork") -> None:
    """Run a Celery worker that drains conversations and runs the bots."""
    from botcore.worker import run_worker

    settings = _settings(config)
    if not settings.redis_url:
        typer.echo("configuration error: a worker needs redis_url (BOTCORE_REDIS_URL); "
                   "'botcore serve' starts an embedded one with its own worker", err=True)
        raise typer.Exit(2)
    try:
        run_worker(settings, settings.redis_url, concurrency=concurrency, pool=pool)
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None


def chat(url: Annotated[str, typer.Option(help="A running botcore server.")] =
         "http://127.0.0.1:8000",
         bot: Annotated[str | None, typer.Option(help="Bot id (default: the first web bot).")]
         = None,
         conversation: Annotated[str | None, typer.Option(help="Conversation id.")] = None,
         key: Annotated[str | None, typer.Option(envvar="BOTCORE_WEB_KEY",
                                                 help="The bot's access_key, if set.")]
         = None) -> None:
    """Talk to a bot in the terminal (through a running 'botcore serve')."""
    from botcore.chatcli import main_chat

    code = main_chat(url, bot, conversation, key)
    if code:
        raise typer.Exit(code)


def _inbox_cli() -> typer.Typer:
    inbox_cli = typer.Typer(no_args_is_help=True)

    @inbox_cli.command("stats")
    def stats(config: ConfigOpt = None) -> None:
        """Depth per bot, oldest message age, dead letters."""
        typer.echo(json.dumps(_with_inbox(config, lambda inbox: inbox.stats()), indent=2))

    @inbox_cli.command("dead-letters")
    def dead_letters(config: ConfigOpt = None,
                     limit: Annotated[int, typer.Option(help="How many.")] = 20) -> None:
        """The newest dead letters, with their errors."""
        records = _with_inbox(config, lambda inbox: inbox.dead_letters(limit))
        for record in records:
            entry = record["entry"]
            typer.echo(f"{entry.get('id', '(unreadable)')}  {record['conversation_id']}  "
                       f"attempts={record['attempts']}  {record['error']}")
        if not records:
            typer.echo("no dead letters")

    @inbox_cli.command("replay")
    def replay(envelope_id: str, config: ConfigOpt = None) -> None:
        """Put a dead letter back into its conversation's inbox."""
        if not _with_inbox(config, lambda inbox: inbox.replay(envelope_id)):
            typer.echo(f"no dead letter with id {envelope_id}", err=True)
            raise typer.Exit(1)
        typer.echo(f"replayed {envelope_id}")

    return inbox_cli


def _with_inbox(config: Path | None, action: Any) -> Any:
    from botcore.embedded import embedded_url_file
    from botcore.ingress.inbox import Inbox
    from botcore.keys import KeyBuilder
    from botcore.redis_client import connect

    settings = _settings(config)
    url = settings.redis_url
    found = embedded_url_file(settings)
    if not url and found.is_file():
        url = found.read_text(encoding="utf-8").strip()   # a running `botcore serve`
    if not url:
        typer.echo("configuration error: set redis_url (BOTCORE_REDIS_URL), or run this "
                   "next to a running `botcore serve` (same data_dir)", err=True)
        raise typer.Exit(2)

    async def run() -> Any:
        redis = connect(str(url))
        try:
            return await action(Inbox(redis, KeyBuilder(prefix=settings.key_prefix)))
        finally:
            await redis.aclose()

    return asyncio.run(run())


def main() -> None:
    """Entry point of the ``botcore`` script."""
    build_cli()()
