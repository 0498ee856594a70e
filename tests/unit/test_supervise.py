"""Long connections are restarted when they fail, and stopped on a configuration error."""

from __future__ import annotations

from botcore.channel import IngestFn
from botcore.errors import ConfigError
from botcore.web.app import supervise


async def _ingest(message: object) -> bool:
    return True


async def test_a_failing_listener_is_restarted_until_a_config_error() -> None:
    outcomes: list[BaseException | None] = [RuntimeError("socket closed"), None,
                                            ConfigError("bots.b.app_secret", "the secret")]
    calls: list[IngestFn] = []

    async def listen(ingest: IngestFn) -> None:
        calls.append(ingest)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    await supervise("b", listen, _ingest, first_delay=0.01, max_delay=0.02)
    assert len(calls) == 3  # failed, ended, then stopped for good on the ConfigError
    assert all(ingest is _ingest for ingest in calls)
    assert outcomes == []


async def test_listeners_start_by_mode_or_by_the_adapters_listens() -> None:
    """A webhook bot whose adapter pulls too (``listens``) gets its loop; a plain webhook
    bot does not; a long-connection mode does."""
    import asyncio
    from types import SimpleNamespace
    from typing import Any

    from botcore.web.app import _start_listeners

    started: list[str] = []

    def adapter(name: str, **attrs: Any) -> Any:
        async def listen(ingest: IngestFn) -> None:
            started.append(name)
            await asyncio.Event().wait()
        return SimpleNamespace(listen=listen, **attrs)

    bots = {"pulls": {}, "plain": {}, "polls": {"mode": "polling"}, "off": {"mode": "app"}}
    runtime = SimpleNamespace(
        adapters={"pulls": adapter("pulls", listens=True), "plain": adapter("plain"),
                  "polls": adapter("polls"), "off": adapter("off", listens=False)},
        settings=SimpleNamespace(bots={b: SimpleNamespace(options=o) for b, o in bots.items()}))
    tasks = _start_listeners(runtime, SimpleNamespace(ingest=_ingest))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(started) == ["polls", "pulls"]
