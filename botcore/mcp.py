"""MCP servers as tools for flows (langchain-mcp-adapters).

A flow's ``mcp`` option names the servers: ``app.default_flow("agent", mcp={"math":
{"transport": "stdio", "command": "python", "args": ["server.py"], "confirm": ["add"],
"timeout": 20}})``. Only the servers named there are used. ``confirm`` (a list of tool names,
or ``true`` for all) marks tools that ask the user first; ``timeout`` bounds each call.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.tools import BaseTool

from botcore.errors import FlowError

__all__ = ["MCP_LOAD_TIMEOUT", "MCP_RETRY_AFTER", "MCP_RETRY_MAX", "McpTools"]

#: Seconds to list an MCP server's tools before giving up.
MCP_LOAD_TIMEOUT = 10.0
#: Seconds a configuration that failed to load is left alone (doubling, up to the max).
MCP_RETRY_AFTER = 60.0
MCP_RETRY_MAX = 900.0


def _mcp_connections(servers: Mapping[str, Any], flow: str
                     ) -> tuple[dict[str, Any], dict[str, tuple[Any, float]]]:
    """Split the ``mcp`` option into client connections and botcore's per-server keys."""
    connections: dict[str, Any] = {}
    extra: dict[str, tuple[Any, float]] = {}
    for name, raw in servers.items():
        if not isinstance(raw, Mapping) or "transport" not in raw:
            raise FlowError(f"option mcp.{name}: expected a table with 'transport' (stdio, "
                            "streamable_http, sse, websocket) and its connection keys",
                            flow=flow)
        conf = dict(raw)
        confirm = conf.pop("confirm", ())
        if not isinstance(confirm, bool | list | tuple):
            raise FlowError(f"option mcp.{name}.confirm: expected true or a list of tool "
                            "names", flow=flow)
        extra[name] = (confirm, float(conf.pop("timeout", 30.0)))
        connections[name] = conf
    return connections, extra


async def _load_mcp_tools(servers: Mapping[str, Any], flow: str) -> list[BaseTool]:
    """List the tools of every server; mark those to confirm (``changes_state``)."""
    try:
        from langchain_mcp_adapters.client import MultiServerMCPClient
    except ImportError:
        raise FlowError("option 'mcp' needs langchain-mcp-adapters: pip install "
                        "'botcore[mcp]'", flow=flow) from None
    connections, extra = _mcp_connections(servers, flow)
    client = MultiServerMCPClient(connections)
    found: list[BaseTool] = []
    for name in connections:
        confirm, timeout = extra[name]
        tools = await asyncio.wait_for(client.get_tools(server_name=name), MCP_LOAD_TIMEOUT)
        for tool in tools:
            asks = confirm is True or (not isinstance(confirm, bool) and tool.name in confirm)
            tool.metadata = {**(tool.metadata or {}), "changes_state": asks,
                             "timeout": timeout, "mcp_server": name}
            found.append(tool)
    return found


class McpTools:
    """MCP tools by server configuration, loaded once per process. Each call opens its own
    session, as langchain-mcp-adapters does.

    A configuration whose servers cannot be listed is remembered: turns go without its tools
    for ``retry_after`` seconds, doubling on each further failure up to ``retry_max``, so an
    unreachable server costs one attempt per back-off period, not one per turn. Each
    configuration has its own lock: a slow server never holds up another bot's.

    Args:
        retry_after: seconds before the first retry.
        retry_max: the longest back-off.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, *, retry_after: float = MCP_RETRY_AFTER,
                 retry_max: float = MCP_RETRY_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retry_after = retry_after
        self.retry_max = retry_max
        self.clock = clock
        self._loaded: dict[str, list[BaseTool]] = {}
        self._failed: dict[str, tuple[float, float]] = {}  # key -> (retry at, last delay)
        self._locks: dict[str, asyncio.Lock] = {}

    def _waiting(self, key: str) -> bool:
        failed = self._failed.get(key)
        return failed is not None and self.clock() < failed[0]

    async def get(self, servers: Mapping[str, Any], log: Any,
                  flow: str) -> list[BaseTool]:
        """The tools of ``servers`` (an empty list while a server is unreachable)."""
        if not servers:
            return []
        key = json.dumps(servers, sort_keys=True, default=str)
        if key in self._loaded:
            return self._loaded[key]
        if self._waiting(key):
            return []
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key in self._loaded:
                return self._loaded[key]
            if self._waiting(key):  # another turn failed while this one waited
                return []
            try:
                self._loaded[key] = await _load_mcp_tools(servers, flow)
            except FlowError:
                raise
            except Exception as exc:  # a server down: answer without its tools
                self._backoff(key, servers, log, exc)
                return []
            self._failed.pop(key, None)
        return self._loaded[key]

    def _backoff(self, key: str, servers: Mapping[str, Any], log: Any,
                 exc: Exception) -> None:
        last = self._failed.get(key)
        delay = self.retry_after if last is None else min(last[1] * 2, self.retry_max)
        self._failed[key] = (self.clock() + delay, delay)
        cause: BaseException = exc
        while isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]  # anyio's task groups wrap the cause
        log.warning("mcp tools unavailable", servers=sorted(servers), retry_in=delay,
                    error=f"{type(cause).__name__}: {cause}")
