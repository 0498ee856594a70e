"""Runs flows for turns: finds builders by entry point, compiles once, streams the answer.

Flows that pause (a confirmation, a human handoff) are compiled with the Redis checkpointer
(entry point group ``botcore.checkpointers``, default ``flows.checkpoint:RedisSaver``); the
thread id is the conversation key, so a paused flow resumes on any worker, after restarts.

A flow's ``mcp`` option names MCP servers (langchain-mcp-adapters connections, plus botcore's
``confirm`` and ``timeout`` keys); their tools are loaded once per process and added to the
bot's own, for flows that use tools (not ``chat`` or ``rag``; option ``use_tools``). A
server that cannot be reached is left alone for a back-off period (:class:`McpTools`).
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, RemoveMessage
from langchain_core.tools import BaseTool
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.types import Command

from botcore.context import TurnContext, TurnStream
from botcore.errors import FlowError
from botcore.flowapi import FlowContext, ModelUnavailable, Pause
from botcore.handoff import SURVEY_TEXT, HandoffDesk
from botcore.llm import (
    TokenUsage,
    check_timeouts,
    make_chat_model,
    make_fallback_models,
    make_model_call,
    model_budget,
)
from botcore.mcp import McpTools
from botcore.message import Citation
from botcore.prompts import chain_prompts
from botcore.sessions import trim_history

if TYPE_CHECKING:
    from botcore.runtime import Runtime

__all__ = ["GraphFlowRunner", "history_messages"]

DEFAULT_CHECKPOINTER = "flows.checkpoint:RedisSaver"
#: Built-in flows that never call tools: no tools (and no MCP server) are loaded for them.
#: Any flow's ``use_tools`` option overrides this.
TOOLLESS_FLOWS = frozenset({"chat", "rag"})


def history_messages(entries: list[Any]) -> list[BaseMessage]:
    """Session history as LangChain messages."""
    out: list[BaseMessage] = []
    for entry in entries:
        if entry.role == "user":
            out.append(HumanMessage(entry.content))
        elif entry.role == "assistant":
            out.append(AIMessage(entry.content))
    return out


class _LazyStream:
    """Opens the turn's stream on the first visible text, so a silent turn sends nothing.

    ``citations`` are put on the message the stream is opened with: the runner sets them
    from the flow's state updates, which come before the answer's text (RAG retrieves first).
    """

    def __init__(self, ctx: TurnContext) -> None:
        self.ctx = ctx
        self.out: TurnStream | None = None
        self.citations: tuple[Citation, ...] = ()

    async def write(self, delta: str) -> None:
        if delta:
            if self.out is None:
                self.out = await self.ctx.stream(citations=self.citations)
            await self.out.write(delta)

    async def finish(self, answer: str) -> None:
        if self.out is None and not answer:
            return
        if self.out is None:
            self.out = await self.ctx.stream(citations=self.citations)
        elif self.out.citations != self.citations:
            self.ctx.log.warning("citations came after the answer started; not shown",
                                 count=len(self.citations))
        await self.out.set(answer)
        await self.out.finish()


async def _invoke(graph: Any, payload: Any, config: dict[str, Any], context: FlowContext,
                  out: _LazyStream) -> dict[str, Any]:
    """``graph.ainvoke``, watching node updates: their ``citations`` reach ``out`` before
    the next node writes the answer."""
    latest: dict[str, Any] = {}
    interrupts: list[Any] = []
    async for mode, chunk in graph.astream(payload, config, context=context,
                                           stream_mode=["updates", "values"]):
        if mode == "values":
            latest = chunk
            continue
        for node, update in chunk.items():
            if node == "__interrupt__":
                interrupts.extend(update)
            elif isinstance(update, dict) and "citations" in update:
                out.citations = tuple(Citation.model_validate(c)
                                      for c in update["citations"] or ())
    return {**latest, "__interrupt__": interrupts} if interrupts else latest


def _pause_of(result: Any) -> Pause | None:
    found = result.get("__interrupt__") if isinstance(result, dict) else None
    if not found:
        return None
    value = found[0].value
    if isinstance(value, dict) and "kind" in value:
        pause = Pause(kind=value["kind"], text=str(value.get("text", "")))
        if value.get("sender"):
            pause["sender"] = str(value["sender"])
        return pause
    return Pause(kind="confirm", text=str(value))


class GraphFlowRunner:
    """The :class:`~botcore.context.FlowRunner` used by workers."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._graphs: dict[str, Any] = {}
        self._default_model: BaseChatModel | None = None
        self._fallbacks: list[BaseChatModel] = []
        self._model_built = False
        self._retrievers: dict[tuple[str, str, str], Any] = {}
        self.desk = HandoffDesk.for_runtime(runtime)
        self.usage = TokenUsage(runtime.redis, runtime.keys)
        self.task_time_limit = float(runtime.settings.worker.task_time_limit)
        self.model_budget = model_budget(self.task_time_limit)
        check_timeouts(runtime.settings.llm, self.model_budget, self.task_time_limit)
        self.mcp = McpTools()

    # building --------------------------------------------------------------------------
    def graph(self, name: str) -> Any:
        """The compiled graph for flow ``name`` (built once per process).

        ``name`` is an installed flow (entry point group ``botcore.flows``) or a
        ``module:function`` reference to a builder.
        """
        if name not in self._graphs:
            found = {ep.name: ep for ep in entry_points(group="botcore.flows")}
            if name in found:
                builder = found[name].load()
            elif ":" in name:
                builder = EntryPoint(name, name, "botcore.flows").load()
            else:
                raise FlowError(f"unknown flow; installed: {sorted(found)}", flow=name)
            if "checkpointer" in inspect.signature(builder).parameters:
                self._graphs[name] = builder(checkpointer=self._checkpointer())
            else:
                self._graphs[name] = builder()
        return self._graphs[name]

    def _checkpointer(self) -> Any:
        found = {ep.name: ep for ep in entry_points(group="botcore.checkpointers")}
        ep = found.get("redis") or EntryPoint("redis", DEFAULT_CHECKPOINTER,
                                              "botcore.checkpointers")
        return ep.load()(self.runtime.redis, self.runtime.keys,
                         ttl=self.runtime.settings.sessions.ttl)

    def model_for(self, ctx: TurnContext) -> BaseChatModel | None:
        """The bot's own model, else the ``[llm]`` one (or None)."""
        if ctx.app.chat_model is not None:
            return ctx.app.chat_model
        if not self._model_built:
            self._default_model = make_chat_model(self.runtime.settings.llm)
            self._fallbacks = make_fallback_models(self.runtime.settings.llm)
            self._model_built = True
        return self._default_model

    def retriever_for(self, ctx: TurnContext, options: dict[str, Any]) -> Any:
        """``options["retriever"]``, or the retriever of knowledge base ``options["kb"]``."""
        if options.get("retriever") is not None or not options.get("kb"):
            return options.get("retriever")
        # The tenant is part of the key: one bot may serve several tenants (set per turn by
        # a middleware), and a retriever is bound to one tenant's documents.
        key = (ctx.bot.id, str(options["kb"]), str(options.get("tenant", "default")))
        if key not in self._retrievers:
            from botcore.retrieval import make_retriever

            kb_settings = self.runtime.settings.kb
            self._retrievers[key] = make_retriever(
                kb_settings.resolve(self.runtime.settings.data_dir), key[1],
                tenant=key[2], bot=ctx.bot.id)
        return self._retrievers[key]

    async def _tools(self, name: str, ctx: TurnContext,
                     options: dict[str, Any]) -> list[BaseTool]:
        """The bot's ``@app.tool`` tools, then those of the MCP servers in ``options``."""
        tools = []
        for spec in ctx.app.tools.values():
            tool = spec.to_langchain()
            tool.metadata = {"changes_state": spec.changes_state, "timeout": spec.timeout}
            tools.append(tool)
        own = {tool.name for tool in tools}
        for tool in await self.mcp.get(options.get("mcp") or ctx.bot.mcp, ctx.log, name):
            if tool.name in own:
                raise FlowError(f"MCP tool {tool.name!r} (server "
                                f"{(tool.metadata or {}).get('mcp_server')!r}) has the name "
                                "of another tool", flow=name)
            own.add(tool.name)
            tools.append(tool)
        return _allowed(tools, options.get("tools", ctx.bot.tools), name)

    async def _flow_context(self, name: str, ctx: TurnContext, options: dict[str, Any],
                            out: _LazyStream) -> FlowContext:
        model = self.model_for(ctx)
        fallbacks = options.get("fallback_models")
        if fallbacks is None:
            fallbacks = self._fallbacks if ctx.app.chat_model is None else []
        models = [model, *fallbacks] if model is not None else []
        uses_tools = options.get("use_tools", name not in TOOLLESS_FLOWS)
        tools = await self._tools(name, ctx, options) if uses_tools else []
        conv = ctx.message.conversation.id

        async def on_usage(usage: dict[str, int]) -> None:
            await self.usage.record(ctx.bot.id, conv, usage)

        async def write(delta: str) -> None:
            await out.write(delta)

        budget = float(options.get("model_timeout", self.model_budget))
        if budget >= self.task_time_limit:
            ctx.log.warning("model_timeout not under worker.task_time_limit; shortened",
                            model_timeout=budget, task_time_limit=self.task_time_limit)
            budget = self.model_budget
        final = make_model_call(models, tools, write, on_usage=on_usage, timeout=budget)

        async def silent_aware(req: Any) -> Any:
            if req.metadata.get("silent"):
                return await make_model_call(models, tools, _ignore, on_usage=on_usage,
                                             timeout=budget)(req)
            return await final(req)

        return FlowContext(
            chat_model=model,
            call_model=chain_prompts(ctx.app.ordered_prompts(), silent_aware),
            tools=tools, retriever=self.retriever_for(ctx, options), options=options,
            metadata={"bot_id": ctx.bot.id, "conversation_id": conv,
                      "channel": ctx.message.channel, "flow": name,
                      "sender_id": ctx.message.sender.id})

    async def _input(self, ctx: TurnContext, options: dict[str, Any]) -> dict[str, Any]:
        budget = int(options.get("history_tokens", self.runtime.settings.sessions.max_tokens))
        entries = trim_history(await ctx.session.history(),
                               self.runtime.settings.sessions.max_turns, budget)
        messages: list[BaseMessage] = [RemoveMessage(id=REMOVE_ALL_MESSAGES)]
        messages += history_messages(entries)
        messages.append(HumanMessage(ctx.message.text))
        return {"messages": messages}

    # running ---------------------------------------------------------------------------
    async def run(self, name: str, ctx: TurnContext, options: dict[str, Any]) -> str:
        """Run flow ``name`` for this turn, streaming its answer; returns the answer."""
        graph = self.graph(name)
        out = _LazyStream(ctx)
        conv = ctx.message.conversation.id
        config: dict[str, Any] = {"configurable": {"thread_id": conv}}
        paused = await self._paused(graph, config)
        resume: dict[str, Any] = {"text": ctx.message.text, "released": False}
        if paused is not None and paused.get("sender") not in (None, ctx.message.sender.id):
            ctx.log.info("pending confirmation is someone else's; message ignored",
                         kind=paused["kind"])
            return ""  # group chats: only the requester answers the question
        if paused is not None and paused["kind"] == "handoff":
            if await self.desk.status(conv) == "open":
                await self.desk.relay(ctx.message)  # the agent answers, not the bot
                return ""
            resume["released"] = True
            await self.desk.close(conv)
        flow_ctx = await self._flow_context(name, ctx, options, out)
        payload: Any = Command(resume=resume) if paused is not None else await self._input(
            ctx, options)
        try:
            result = await _invoke(graph, payload, config, flow_ctx, out)
        except ModelUnavailable as exc:
            ctx.log.warning("model unavailable", error=str(exc))
            answer = str(options.get("apology") or ctx.app.apology
                         or self.runtime.settings.ingress.apology)
            await self._forget(graph, conv)
            out.citations = ()  # the apology cites nothing
            await out.finish(answer)
            return answer
        pause = _pause_of(result)
        if pause is None:
            answer = str(result.get("answer") or "")
            await self._forget(graph, conv)
            if paused is not None and result.get("satisfaction"):
                await self.desk.rate(ctx.message, int(result["satisfaction"]))
        else:
            answer = pause["text"]
            out.citations = ()
            if pause["kind"] == "handoff":
                survey = (str(options.get("satisfaction_text", SURVEY_TEXT))
                          if options.get("satisfaction", True) else "")
                await self.desk.open(ctx.message, reason=str(result.get("intent", "")),
                                     survey=survey)
        await out.finish(answer)
        return answer

    @staticmethod
    async def _paused(graph: Any, config: dict[str, Any]) -> Pause | None:
        if graph.checkpointer is None:
            return None
        state = await graph.aget_state(config)
        if not state.next:
            return None
        interrupts = list(state.interrupts)
        if not interrupts:  # a run cut short by a crash: start the turn afresh
            await graph.checkpointer.adelete_thread(config["configurable"]["thread_id"])
            return None
        return _pause_of({"__interrupt__": interrupts})

    @staticmethod
    async def _forget(graph: Any, thread_id: str) -> None:
        # history lives in the session; a finished run's checkpoints are not needed
        if graph.checkpointer is not None:
            await graph.checkpointer.adelete_thread(thread_id)


async def _ignore(delta: str) -> None:
    return None


def _allowed(tools: list[BaseTool], names: Any, flow: str) -> list[BaseTool]:
    """Only the tools named in the allow-list (flow option ``tools`` or ``[bots.<id>]
    tools``); None allows all. A name that matches no tool is a configuration mistake."""
    if names is None:
        return tools
    wanted = [str(n) for n in names]
    unknown = sorted(set(wanted) - {tool.name for tool in tools})
    if unknown:
        raise FlowError(f"tools {unknown} are in the bot's tool allow-list but no @app.tool "
                        "or MCP server provides them (check the names)", flow=flow)
    return [tool for tool in tools if tool.name in wanted]
