"""An unreachable MCP server is tried once per back-off period, not on every turn, and
flows that use no tools never load MCP tools."""

from __future__ import annotations

import time
from typing import Any

import pytest

import botcore.mcp
from botcore.mcp import McpTools
from botcore.redis_server import free_port
from tests.flows.conftest import fake_model

REFUSED = {"down": {"transport": "streamable_http",
                    "url": f"http://127.0.0.1:{free_port()}/mcp"}}  # nothing listens


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Times at which the servers' tools were listed (through the real loader)."""
    real = botcore.mcp._load_mcp_tools
    seen: list[float] = []

    async def counting(servers: Any, flow: str) -> Any:
        seen.append(time.monotonic())
        return await real(servers, flow)

    monkeypatch.setattr(botcore.mcp, "_load_mcp_tools", counting)
    return seen


async def test_refused_server_is_not_retried_within_the_back_off(
        harness: Any, attempts: list[float]) -> None:
    clock = Clock()
    h = harness(fake_model("one", "two", "three", "four", "five"))
    h.runner.mcp = McpTools(retry_after=60, retry_max=300, clock=clock)
    started = time.monotonic()
    assert await h.turn("hi", "agent", mcp=REFUSED) == "one"
    assert len(attempts) == 1
    clock.now += 59
    assert await h.turn("again", "agent", mcp=REFUSED) == "two"
    assert len(attempts) == 1  # within the back-off: not tried again
    assert time.monotonic() - started < 5  # a refused connection fails fast
    clock.now += 2
    assert await h.turn("later", "agent", mcp=REFUSED) == "three"
    assert len(attempts) == 2  # back-off over: one more attempt, which fails again
    clock.now += 61
    assert await h.turn("still", "agent", mcp=REFUSED) == "four"
    assert len(attempts) == 2  # the back-off doubled to 120 s
    clock.now += 60
    assert await h.turn("now", "agent", mcp=REFUSED) == "five"
    assert len(attempts) == 3


@pytest.mark.parametrize("flow", ["rag", "chat"])
async def test_flows_without_tools_never_load_mcp(harness: Any, attempts: list[float],
                                                  flow: str) -> None:
    h = harness(fake_model("hello"))
    await h.turn("hi", flow, mcp=REFUSED)
    assert attempts == []
