"""Tool errors with LangChain's own fake chat model: each failing call's error reaches the
model; a tool failing a second time ends the turn with the clear failure answer."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from pydantic import Field

from botcore.app import BotApp
from flows.agent import TOOL_FAILED

AGENT = "flows.agent:build_agent_graph"


class ToolsFake(FakeMessagesListChatModel):
    """LangChain's list fake; ``bind_tools`` is all it lacks for the agent flow. Records
    what the model was shown on each call."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.seen.append(list(messages))
        return super()._generate(messages, *args, **kwargs)


def calls(*names: str) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": n, "args": {}, "id": f"c{i}-{n}"}
                                     for i, n in enumerate(names)])


def _app() -> BotApp:
    app = BotApp("t")

    @app.tool
    def stock() -> str:
        """Stock levels."""
        raise RuntimeError("stock db down")

    @app.tool
    def prices() -> str:
        """Price list."""
        raise ValueError("price feed stale")

    @app.tool
    def hours() -> str:
        """Opening hours."""
        return "9-18"

    return app


async def test_two_failing_calls_in_one_message_both_reach_the_model(harness: Any) -> None:
    model = ToolsFake(responses=[calls("stock", "prices", "hours"),
                                 AIMessage("Stock and prices are unavailable; open 9-18.")],
                      seen=[])
    h = harness(model, _app())
    assert await h.turn("status?", AGENT) == "Stock and prices are unavailable; open 9-18."
    assert len(model.seen) == 2
    results = [m for m in model.seen[1] if isinstance(m, ToolMessage)]
    assert [r.status for r in results] == ["error", "error", "success"]
    assert "stock db down" in str(results[0].content)
    assert "price feed stale" in str(results[1].content)


async def test_the_same_tool_failing_again_ends_the_turn(harness: Any) -> None:
    model = ToolsFake(responses=[calls("stock"), calls("prices"), calls("stock"),
                                 AIMessage("never said")], seen=[])
    h = harness(model, _app())
    assert await h.turn("status?", AGENT) == TOOL_FAILED
    assert len(model.seen) == 3  # stock's and prices' first errors both went back
    assert h.replier.sent == [TOOL_FAILED]


async def test_a_tool_error_then_a_malformed_call_still_gets_its_second_chance(
        harness: Any) -> None:
    bad = AIMessage("", invalid_tool_calls=[{"name": "stock", "args": "{oops", "id": "x",
                                             "error": "bad json",
                                             "type": "invalid_tool_call"}])
    model = ToolsFake(responses=[calls("prices"), bad, AIMessage("Prices are stale.")],
                      seen=[])
    h = harness(model, _app())
    assert await h.turn("prices?", AGENT) == "Prices are stale."
    assert "malformed" in str(model.seen[2][-1].content)


class BoundFake(ToolsFake):
    """Also records which tools the flow offered the model."""

    bound: list[str] = Field(default_factory=list)

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound = [tool.name for tool in tools]
        return self


async def test_the_tool_allow_list_limits_what_the_model_is_offered(harness: Any) -> None:
    model = BoundFake(responses=[calls("hours"), AIMessage("Open 9-18.")], seen=[])
    h = harness(model, _app())
    assert await h.turn("when are you open?", AGENT, tools=["hours"]) == "Open 9-18."
    assert model.bound == ["hours"]
    everything = BoundFake(responses=[AIMessage("Hi.")], seen=[])
    await harness(everything, _app()).turn("hi", AGENT)
    assert sorted(everything.bound) == ["hours", "prices", "stock"]


async def test_an_allow_list_naming_no_tool_is_a_clear_error(harness: Any) -> None:
    from botcore.errors import FlowError

    h = harness(BoundFake(responses=[AIMessage("never")], seen=[]), _app())
    with pytest.raises(FlowError, match=r"\['refund'\].*allow-list"):
        await h.turn("refund me", AGENT, tools=["hours", "refund"])
