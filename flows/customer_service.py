"""Customer-service flow: classify → FAQ/RAG answer | tool lookup | human handoff | small talk.

A handoff pauses the graph (checkpointed in Redis); the runner opens it on the
:class:`~botcore.handoff.HandoffDesk`, relays the user's messages to the agent and keeps the
bot quiet until the agent releases the conversation; the release sends the satisfaction
question (option ``satisfaction``, default on; ``satisfaction_text``). The message after the
release resumes the graph: a 1-5 rating is the answer (the runner stores it in Redis),
anything else is classified and answered as usual.

Options: those of ``rag`` and ``agent``, plus ``handoff_words``, ``handoff_exclude``,
``handoff_text``, ``smalltalk_system``, ``satisfaction``, ``satisfaction_text``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from botcore.flowapi import FlowContext, Pause, last_user_text
from botcore.prompts import PromptRequest
from flows.agent import add_agent_nodes
from flows.rag import add_rag_nodes
from flows.state import FlowState

__all__ = ["HANDOFF_EXCLUDE", "HANDOFF_WORDS", "INTENTS", "build_cs_graph",
           "wants_human"]

INTENTS = ("faq", "lookup", "handoff", "smalltalk")
#: Phrases that ask for a person. Latin-script ones match as whole words ("human" matches
#: "talk to a human", never "humanity"); Chinese ones as substrings, after the compounds of
#: :data:`HANDOFF_EXCLUDE` are taken out ("人工智能" is not "人工").
HANDOFF_WORDS = ("转人工", "人工客服", "人工服务", "找人工", "要人工", "接人工", "真人客服",
                 "客服专员", "human", "humans", "real person", "live agent", "live person")
#: Compounds that contain a handoff phrase but mean something else.
HANDOFF_EXCLUDE = ("人工智能", "人工成本", "人工费", "人工合成", "人工湖", "人工降雨",
                   "人工呼吸", "人工授精", "人工草坪", "人工神经", "人工翻译", "真人秀", "真人版")
#: A message that is nothing but one of these (and punctuation) asks for a person too.
HANDOFF_ALONE = ("人工", "客服", "真人", "agent", "operator")
HANDOFF_TEXT = ("正在为您转接人工客服，请稍候，客服会在这里回复您。/ Connecting you to a human "
                "agent; they will answer here.")
THANKS = "感谢您的评价！/ Thank you for your feedback!"
CLASSIFY = ("Classify the customer's last message. Reply with exactly one word: "
            "faq (a question about products, policies, how-to), "
            "lookup (needs account or order data from a tool), "
            "handoff (asks for a human or is upset), "
            "smalltalk (greetings, thanks, chit-chat).")


async def classify(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Pick the intent: explicit handoff words first, then the model (silently)."""
    ctx = runtime.context
    text = last_user_text(state.get("messages", []))
    if wants_human(text, ctx.options.get("handoff_words", HANDOFF_WORDS),
                   ctx.options.get("handoff_exclude", HANDOFF_EXCLUDE)):
        return {"intent": "handoff"}
    if ctx.chat_model is None:
        return {"intent": "faq"}
    result = await ctx.call_model(PromptRequest(
        system=[CLASSIFY], messages=state["messages"][-6:],
        metadata={**ctx.metadata, "silent": True, "purpose": "classify"}))
    found = re.findall(r"[a-z]+", result.text.lower())
    intent = next((word for word in found if word in INTENTS), "faq")
    if intent == "lookup" and not ctx.tools:
        intent = "faq"
    return {"intent": intent}


def wants_human(text: str, words: Sequence[str] = HANDOFF_WORDS,
                exclude: Sequence[str] = HANDOFF_EXCLUDE) -> bool:
    """Whether ``text`` asks for a human agent (see :data:`HANDOFF_WORDS`)."""
    text = text.lower()
    if re.sub(r"[\W_]+", "", text) in HANDOFF_ALONE:
        return True
    for compound in exclude:
        text = text.replace(compound.lower(), " ")
    for word in words:
        word = word.lower()
        if re.search(r"[a-z]", word):
            if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text, re.ASCII):
                return True
        elif word in text:
            return True
    return False


def route(state: FlowState) -> str:
    """The node for the intent."""
    return {"faq": "retrieve", "lookup": "agent", "handoff": "handoff",
            "smalltalk": "smalltalk"}.get(state.get("intent", "faq"), "retrieve")


async def smalltalk(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """A friendly short answer."""
    ctx = runtime.context
    system = ctx.options.get("smalltalk_system",
                             "You are a friendly customer-service assistant. Answer briefly.")
    result = await ctx.call_model(PromptRequest(
        system=[system], messages=state["messages"], metadata=dict(ctx.metadata)))
    return {"messages": [result.message], "answer": result.text}


async def handoff(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Wait for a human agent; resumes with the first user message after the release."""
    ctx = runtime.context
    reply = interrupt(Pause(kind="handoff",
                            text=str(ctx.options.get("handoff_text", HANDOFF_TEXT))))
    text = str(reply.get("text", "") if isinstance(reply, dict) else reply).strip()
    update: dict[str, Any] = {"messages": [HumanMessage(text)], "intent": ""}
    if ctx.options.get("satisfaction", True) and re.fullmatch(r"[1-5]", text):
        update.update(satisfaction=int(text), answer=THANKS)
    return update


def after_handoff(state: FlowState) -> str:
    """A rating ends the run; another message is classified and answered."""
    return END if state.get("answer") else "classify"


def build_cs_graph(checkpointer: Any = None) -> Any:
    """Compile the customer-service graph; pass a checkpointer so handoffs can pause."""
    graph = StateGraph(FlowState, context_schema=FlowContext)
    graph.add_node("classify", classify)
    graph.add_node("smalltalk", smalltalk)
    graph.add_node("handoff", handoff)
    add_rag_nodes(graph)
    add_agent_nodes(graph)
    graph.add_edge(START, "classify")
    graph.add_conditional_edges("classify", route,
                                ["retrieve", "agent", "handoff", "smalltalk"])
    graph.add_edge("smalltalk", END)
    graph.add_conditional_edges("handoff", after_handoff, ["classify", END])
    return graph.compile(checkpointer=checkpointer)
