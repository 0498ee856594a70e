"""A tiny MCP server over stdio with one tool, ``add(a, b)``, for the agent flow's tests.

Run as ``python tests/flows/mcp_add_server.py``; it speaks MCP on stdin/stdout.
"""

from __future__ import annotations

from mcp.server.fastmcp import FastMCP

server = FastMCP("math", log_level="WARNING")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


if __name__ == "__main__":
    server.run("stdio")
