"""Group chats: only the member who asked for a state-changing tool call confirms it."""

from __future__ import annotations

from typing import Any

from botcore.app import BotApp
from tests.flows.conftest import call, fake_model

AGENT = "flows.agent:build_agent_graph"
GROUP = {"chat_type": "group"}


def _app(done: list[str]) -> BotApp:
    app = BotApp("t")

    @app.tool(changes_state=True)
    async def cancel_order(order_id: str) -> str:
        """Cancel an order."""
        done.append(order_id)
        return "cancelled"

    return app


async def test_another_members_yes_does_not_confirm(harness: Any) -> None:
    done: list[str] = []
    model = fake_model(call("cancel_order", order_id="7"), "Order 7 is cancelled.")
    h = harness(model, _app(done))
    question = await h.turn("cancel order 7", AGENT, as_sender="alice", **GROUP)
    assert "cancel_order" in question
    assert await h.turn("yes", AGENT, as_sender="mallory", **GROUP) == ""
    assert done == []  # nobody confirms for someone else
    assert len(model.calls) == 1  # ignored: the graph was not resumed
    assert await h.turn("yes", AGENT, as_sender="alice", **GROUP) == "Order 7 is cancelled."
    assert done == ["7"]


async def test_another_members_no_does_not_cancel(harness: Any) -> None:
    done: list[str] = []
    model = fake_model(call("cancel_order", order_id="8"), "Done.")
    h = harness(model, _app(done))
    await h.turn("cancel order 8", AGENT, as_sender="alice", **GROUP)
    assert await h.turn("no!", AGENT, as_sender="bob", **GROUP) == ""
    assert await h.turn("是", AGENT, as_sender="alice", **GROUP) == "Done."
    assert done == ["8"]


async def test_the_requesters_no_cancels(harness: Any) -> None:
    done: list[str] = []
    model = fake_model(call("cancel_order", order_id="9"), "OK, not cancelled.")
    h = harness(model, _app(done))
    await h.turn("cancel order 9", AGENT, as_sender="alice", **GROUP)
    assert await h.turn("no", AGENT, as_sender="alice", **GROUP) == "OK, not cancelled."
    assert done == []
