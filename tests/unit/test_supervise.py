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
