"""MCP servers named in a flow's ``mcp`` option: a real stdio MCP server (FastMCP, in
``mcp_add_server.py``) whose ``add`` tool the agent flow calls, driven by a scripted model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from botcore.app import BotApp
from botcore.errors import FlowError
from botcore.settings import BotConfig
from tests.flows.conftest import FakeToolModel, call

SERVER = str(Path(__file__).with_name("mcp_add_server.py"))
MATH = {"command": sys.executable, "args": [SERVER], "transport": "stdio"}
TOOL_RESULT = "<the tool's result>"


class ToolEchoModel(FakeToolModel):
    """A scripted model whose ``TOOL_RESULT`` answers repeat the newest tool output, so the
    answer can only hold the sum if the MCP server really computed it."""

    def _next(self, messages: list[BaseMessage]) -> AIMessage:
        message = super()._next(messages)
        if message.content != TOOL_RESULT:
            return message
        result = next(m for m in reversed(messages) if isinstance(m, ToolMessage))
        body = str(result.content).split("\n")[1]  # the line inside the <data> fence
        return AIMessage(f"19 + 23 = {body}")


def echo_model(*script: Any) -> ToolEchoModel:
    return ToolEchoModel(script=list(script), calls=[], bound=[])


async def test_agent_calls_the_mcp_tool_and_answers_with_the_sum(harness: Any) -> None:
    app = BotApp("t")

    @app.tool
    async def order_status(order_id: str) -> str:
        """Look up an order."""
        return "shipped"

    model = echo_model(call("add", a=19, b=23), TOOL_RESULT, call("add", a=1, b=2),
                       TOOL_RESULT)
    h = harness(model, app)
    answer = await h.turn("what is 19 + 23?", "agent", mcp={"math": MATH})
    assert answer == "19 + 23 = 42"
    assert model.bound[0] == ["order_status", "add"]  # the bot's tools, then the server's
    assert h.replier.sent == [answer]
    mcp_tools = h.runner.mcp._loaded
    await h.turn("again", "agent", mcp={"math": MATH})
    assert h.runner.mcp._loaded is mcp_tools
    assert len(mcp_tools) == 1  # listed once per process, not per turn
    assert h.replier.sent[-1] == "19 + 23 = 3"


async def test_servers_named_in_the_bot_settings_are_used(harness: Any) -> None:
    model = echo_model(call("add", a=2, b=5), TOOL_RESULT)
    h = harness(model, BotApp("t"))
    h.bot = BotConfig(id="bot", channel="web", app="tests.x:app", mcp={"math": MATH})
    assert await h.turn("2 + 5?", "agent") == "19 + 23 = 7"
    assert model.bound[0] == ["add"]


async def test_tools_listed_in_confirm_ask_the_user_first(harness: Any) -> None:
    model = echo_model(call("add", a=19, b=23), TOOL_RESULT)
    h = harness(model)
    options = {"mcp": {"math": {**MATH, "confirm": ["add"]}}}
    question = await h.turn("add 19 and 23", "agent", **options)
    assert "add(" in question
    assert "confirm" in question
    assert await h.turn("yes", "agent", **options) == "19 + 23 = 42"


async def test_a_bad_server_table_is_a_flow_error(harness: Any) -> None:
    h = harness(echo_model("unused"))
    with pytest.raises(FlowError, match=r"option mcp\.math: .*'transport'"):
        await h.turn("hi", "agent", mcp={"math": {"command": "python"}})


async def test_a_server_that_fails_to_start_leaves_the_bot_answering(harness: Any) -> None:
    model = echo_model("I can still answer.")
    h = harness(model)
    broken = {"command": sys.executable, "args": ["-c", "raise SystemExit(3)"],
              "transport": "stdio"}
    answer = await h.turn("hi", "agent", mcp={"broken": broken})
    assert answer == "I can still answer."
    assert model.bound == []  # no tool to bind: the server did not start
