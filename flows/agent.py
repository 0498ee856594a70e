"""Agent flow: the model calls ``@app.tool`` tools in a loop until it answers.

* Only the bot's own tools are bound, and a call of any other name is refused.
* Tools marked ``changes_state`` wait for the user's confirmation (a LangGraph interrupt,
  checkpointed: it survives a worker restart). Option ``confirm=False`` turns that off.
  Only the sender who asked answers it; in a group, other members' messages are ignored
  while it waits.
* Each tool call has its tool's timeout. Every failing call's error goes back to the model
  (all of them, when one model message makes several calls); a tool that fails again later
  in the turn ends it with :data:`TOOL_FAILED`. Malformed tool-call output is reported to
  the model once; malformed again ends the turn the same way.
* ``max_steps`` (default 6) model calls at most per turn.
* ``mcp`` adds the tools of the MCP servers it names (see ``docs/flows.md``); they need no
  confirmation unless listed in the server's ``confirm``.
Tool output reaches the model fenced as data, never as instructions.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from botcore.flowapi import FlowContext, Pause, tool_changes_state, tool_timeout
from botcore.prompts import PromptRequest
from flows.state import FlowState, fence

__all__ = ["YES", "add_agent_nodes", "build_agent_graph"]

YES = {"是", "是的", "好", "好的", "确认", "确定", "可以", "对", "y", "yes", "ok", "okay", "sure"}
STEP_LIMIT = ("抱歉，这个问题需要的步骤太多，我没能完成。/ Sorry, I could not finish this "
              "within the step limit.")
TOOL_FAILED = ("抱歉，查询工具暂时出错了，请稍后再试。/ Sorry, a tool I need is failing "
               "right now; please try again later.")


async def agent(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """One model call with the bot's tools."""
    ctx = runtime.context
    steps = state.get("steps", 0) + 1
    if steps > int(ctx.options.get("max_steps", 6)):
        return {"answer": STEP_LIMIT, "steps": steps}
    result = await ctx.call_model(PromptRequest(
        system=list(ctx.options.get("system", [])), messages=state["messages"],
        metadata={**ctx.metadata, "tools": [t.name for t in ctx.tools]}))
    message = result.message
    if message.invalid_tool_calls:  # malformed output: say so once, then give up
        malformed = state.get("malformed", 0) + 1
        if malformed > 1:
            return {"answer": TOOL_FAILED, "malformed": malformed, "steps": steps}
        bad = "; ".join(str(c.get("error") or c.get("name")) for c in message.invalid_tool_calls)
        return {"messages": [AIMessage(result.text), HumanMessage(
            f"(system) Your tool call was malformed ({bad}). Try again or answer directly.")],
                "malformed": malformed, "steps": steps}
    update: dict[str, Any] = {"messages": [message], "steps": steps}
    if not message.tool_calls:
        update["answer"] = result.text
    return update


def after_agent(state: FlowState, runtime: Runtime[FlowContext]) -> str:
    """Route: answer given, confirmation needed, tools to run, or another model call."""
    if state.get("answer"):
        return END
    last = state["messages"][-1]
    if not isinstance(last, AIMessage) or not last.tool_calls:
        return "agent"  # a malformed call was reported to the model
    ctx = runtime.context
    tools = {t.name: t for t in ctx.tools}
    risky = [c for c in last.tool_calls if c["name"] in tools
             and tool_changes_state(tools[c["name"]])]
    if risky and ctx.options.get("confirm", True) and not state.get("approved"):
        return "confirm"
    return "tools"


def _describe(call: dict[str, Any]) -> str:
    return f"{call['name']}({json.dumps(call.get('args', {}), ensure_ascii=False)})"


async def confirm(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Ask the user before state-changing tool calls; the graph waits for the reply."""
    last = state["messages"][-1]
    assert isinstance(last, AIMessage)
    what = ", ".join(_describe(dict(c)) for c in last.tool_calls)
    pause = Pause(kind="confirm", text=(
        f"需要您确认：{what}。回复“是”继续，其他任何回复将取消。\n"
        f"Please confirm: {what}. Reply \"yes\" to go ahead; anything else cancels."))
    sender = runtime.context.metadata.get("sender_id")
    if sender:  # only the requester's reply counts (group chats)
        pause["sender"] = str(sender)
    reply = interrupt(pause)
    text = str(reply.get("text", "") if isinstance(reply, dict) else reply).strip().lower()
    if text.rstrip("。.!！") in YES:
        return {"approved": True}
    declined = [ToolMessage(content="The user declined; the call was not made.",
                            tool_call_id=c["id"] or "", name=c["name"], status="error")
                for c in last.tool_calls]
    return {"messages": [*declined, HumanMessage(text)], "approved": False}


def after_confirm(state: FlowState) -> str:
    """Run the approved calls, or let the model answer the refusal."""
    return "tools" if state.get("approved") else "agent"


def _text_of(output: Any) -> str:
    """A tool's output as text (MCP tools return a list of content blocks)."""
    if isinstance(output, list) and all(isinstance(b, dict) for b in output):
        return "\n".join(str(b.get("text", "")) for b in output if b.get("type") == "text")
    return str(output)


async def _call(ctx: FlowContext, call: dict[str, Any]) -> tuple[str, bool]:
    tools = {t.name: t for t in ctx.tools}
    tool = tools.get(call["name"])
    if tool is None:
        return f"error: no tool named {call['name']!r} is available", False
    try:
        output = await asyncio.wait_for(tool.ainvoke(call.get("args", {})),
                                        tool_timeout(tool))
    except TimeoutError:
        return f"error: {call['name']} timed out", False
    except Exception as exc:  # the model sees the error once
        return f"error: {type(exc).__name__}: {exc}", False
    return _text_of(output), True


async def tools(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Run the model's tool calls; every error goes back to the model, and a tool that
    failed earlier in the turn and fails again ends it."""
    last = state["messages"][-1]
    assert isinstance(last, AIMessage)
    before = list(state.get("failed_tools", []))
    results: list[ToolMessage] = []
    failed: list[str] = []
    for call in last.tool_calls:
        text, ok = await _call(runtime.context, dict(call))
        if not ok and call["name"] not in failed:
            failed.append(call["name"])
        results.append(ToolMessage(content=fence(f"tool:{call['name']}", text),
                                   tool_call_id=call["id"] or "", name=call["name"],
                                   status="success" if ok else "error"))
    update: dict[str, Any] = {"messages": results, "approved": False,
                              "failed_tools": before + [n for n in failed if n not in before]}
    if any(name in before for name in failed):
        update["answer"] = TOOL_FAILED
    return update


def after_tools(state: FlowState) -> str:
    """Stop after a tool's second failure, else back to the model."""
    return END if state.get("answer") else "agent"


def add_agent_nodes(graph: StateGraph[Any, Any, Any, Any]) -> None:
    """Add the agent loop (entry: ``agent``) to ``graph``."""
    graph.add_node("agent", agent)
    graph.add_node("confirm", confirm)
    graph.add_node("tools", tools)
    graph.add_conditional_edges("agent", after_agent, ["agent", "confirm", "tools", END])
    graph.add_conditional_edges("confirm", after_confirm, ["tools", "agent"])
    graph.add_conditional_edges("tools", after_tools, ["agent", END])


def build_agent_graph(checkpointer: Any = None) -> Any:
    """Compile the agent graph; pass a checkpointer so confirmations can pause."""
    graph = StateGraph(FlowState, context_schema=FlowContext)
    add_agent_nodes(graph)
    graph.add_edge(START, "agent")
    return graph.compile(checkpointer=checkpointer)
