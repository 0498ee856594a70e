"""The plain chat flow: history + the user's message → the model (through prompt plugins)."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

from langchain_core.messages import BaseMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.runtime import Runtime

from botcore.flowapi import FlowContext
from botcore.prompts import PromptRequest

__all__ = ["ChatState", "build_chat_graph"]


class ChatState(TypedDict, total=False):
    """The chat flow's state."""

    messages: Annotated[list[BaseMessage], add_messages]
    answer: str


async def respond(state: ChatState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Ask the model (through the bot's prompt plugins) and keep its answer."""
    ctx = runtime.context
    system = list(ctx.options.get("system", []))
    result = await ctx.call_model(PromptRequest(system=system, messages=state["messages"],
                                                metadata=dict(ctx.metadata)))
    return {"messages": [result.message], "answer": result.text}


def build_chat_graph() -> Any:
    """Compile the chat graph (no checkpointer: a chat turn never pauses)."""
    graph = StateGraph(ChatState, context_schema=FlowContext)
    graph.add_node("respond", respond)
    graph.add_edge(START, "respond")
    graph.add_edge("respond", END)
    return graph.compile()
