"""RAG flow: retrieve → answer with citations; "I don't know" when nothing is relevant.

With no model configured it answers with the best passages and their sources, labelled as
a retrieval-only answer. Options (``app.default_flow("rag", kb="faq", ...)``): ``k``
(passages, default 4), ``min_score``, ``dont_know`` (the answer when nothing is found),
``system`` (extra instructions).
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from botcore.flowapi import DONT_KNOW, FlowContext, last_user_text
from botcore.message import Citation
from botcore.prompts import PromptRequest
from flows.state import FlowState

__all__ = ["RETRIEVAL_ONLY", "SYSTEM", "add_rag_nodes", "build_rag_graph", "citation_of"]

SYSTEM = ("Answer the user's question using only the reference material. Cite the passages "
          "you used as [1], [2]. If the material does not answer the question, say you don't "
          "know. Answer in the user's language.")
RETRIEVAL_ONLY = ("（仅检索结果：未配置语言模型）以下是知识库中最相关的内容：\n"
                  "(Retrieval only, no language model: the most relevant passages.)")


def citation_of(p: dict[str, Any]) -> dict[str, Any]:
    """The :class:`~botcore.message.Citation` (as JSON) of a passage dict."""
    source = str(p.get("source", ""))
    url = source if source.startswith(("http://", "https://")) else None
    return Citation(title=str(p.get("title") or source), source=source, url=url,
                    page=p.get("page"), heading=p.get("heading") or None).model_dump()


async def retrieve(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Find passages for the user's latest message; their citations go with the answer."""
    ctx = runtime.context
    query = last_user_text(state.get("messages", []))
    if ctx.retriever is None or not query.strip():
        return {"passages": [], "citations": []}
    found = await ctx.retriever.retrieve(query, k=int(ctx.options.get("k", 4)))
    floor = ctx.options.get("min_score")
    kept = [p.model_dump() for p in found if floor is None or p.score >= float(floor)]
    return {"passages": kept, "citations": [citation_of(p) for p in kept]}


def after_retrieve(state: FlowState, runtime: Runtime[FlowContext]) -> str:
    """Route: nothing found, no model, or answer with the model."""
    if not state.get("passages"):
        return "dont_know"
    return "answer" if runtime.context.chat_model is not None else "retrieval_only"


async def dont_know(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """The configured "I don't know" answer (no model call: nothing to ground it)."""
    return {"answer": str(runtime.context.options.get("dont_know", DONT_KNOW))}


def _citation(p: dict[str, Any]) -> str:
    ref = str(p.get("source", ""))
    if p.get("heading"):
        ref += f" › {p['heading']}"
    if p.get("page") is not None:
        ref += f", p. {p['page']}"
    return ref


async def retrieval_only(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """The best passages with their sources, clearly labelled."""
    lines = [RETRIEVAL_ONLY]
    for i, p in enumerate(state.get("passages", []), 1):
        lines.append(f"\n[{i}] {p['text'].strip()}\n    — {_citation(p)}")
    return {"answer": "\n".join(lines)}


async def answer(state: FlowState, runtime: Runtime[FlowContext]) -> dict[str, Any]:
    """Ask the model with the passages given as fenced data, then list the sources."""
    ctx = runtime.context
    passages = state.get("passages", [])
    data = [f"[{i}] ({_citation(p)})\n{p['text']}" for i, p in enumerate(passages, 1)]
    result = await ctx.call_model(PromptRequest(
        system=[SYSTEM, *ctx.options.get("system", [])], messages=state["messages"],
        data=data, metadata=dict(ctx.metadata)))
    sources = "\n".join(f"[{i}] {_citation(p)}" for i, p in enumerate(passages, 1))
    return {"messages": [result.message],
            "answer": f"{result.text.rstrip()}\n\n来源 / Sources:\n{sources}"}


def add_rag_nodes(graph: StateGraph[Any, Any, Any, Any]) -> None:
    """Add the RAG nodes (entry: ``retrieve``) to ``graph``; each answer node ends the run."""
    graph.add_node("retrieve", retrieve)
    graph.add_node("dont_know", dont_know)
    graph.add_node("retrieval_only", retrieval_only)
    graph.add_node("answer", answer)
    graph.add_conditional_edges("retrieve", after_retrieve,
                                ["dont_know", "retrieval_only", "answer"])
    for node in ("dont_know", "retrieval_only", "answer"):
        graph.add_edge(node, END)


def build_rag_graph() -> Any:
    """Compile the RAG graph (it never pauses: no checkpointer needed)."""
    graph = StateGraph(FlowState, context_schema=FlowContext)
    add_rag_nodes(graph)
    graph.add_edge(START, "retrieve")
    return graph.compile()
