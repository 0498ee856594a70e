"""BotApp registration and dispatch: routing, addressing, middleware, error hooks, default
flow, prompt plugin order, tools."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage

from botcore.app import BotApp
from botcore.context import TurnContext
from botcore.dispatch import DispatchResult, dispatch
from botcore.errors import DispatchError
from botcore.message import InboundMessage, OutboundMessage, SendResult
from botcore.prompts import CallNext, PromptRequest, PromptResult, chain_prompts
from botcore.sessions import Session
from botcore.sessions.memory import InMemorySessionStore
from botcore.settings import BotConfig
from botcore.testing import make_inbound


class _NullReplier:
    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> SendResult:
        self.sent.append(message)
        return SendResult()

    async def open_stream(self, message: OutboundMessage) -> Any:
        raise AssertionError("not used")


class _StubFlows:
    """Our own FlowRunner protocol boundary: records what it was asked to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def run(self, name: str, ctx: TurnContext, options: dict[str, Any]) -> str:
        self.calls.append((name, options))
        return "flow answer"


def _ctx(app: BotApp, message: InboundMessage, flows: _StubFlows | None = None) -> TurnContext:
    return TurnContext(message=message,
                       session=Session(InMemorySessionStore(), message.conversation),
                       bot=BotConfig(id="bot", channel="web", app="tests.x:app"), app=app,
                       replier=_NullReplier(), flows=flows)


async def _run(app: BotApp, message: InboundMessage,
               flows: _StubFlows | None = None) -> tuple[DispatchResult, TurnContext]:
    ctx = _ctx(app, message, flows)
    return await dispatch(ctx), ctx


# registration -------------------------------------------------------------------------
async def test_decorators_return_the_original_function_and_only_register() -> None:
    app = BotApp()
    calls: list[str] = []

    async def handler(ctx: TurnContext) -> None:
        calls.append("ran")

    async def mw(ctx: TurnContext, call_next: Any) -> None:
        await call_next()

    async def hook(ctx: TurnContext, exc: BaseException) -> bool:
        return True

    async def plugin(req: PromptRequest, call_next: CallNext) -> PromptResult:
        return await call_next(req)

    assert app.command("a")(handler) is handler
    assert app.message(regex="x")(handler) is handler
    assert app.event("joined")(handler) is handler
    assert app.middleware(mw) is mw
    assert app.error(hook) is hook
    assert app.prompt(plugin) is plugin
    assert app.prompt(order=5)(plugin) is plugin
    assert calls == []
    assert [h.kind for h in app.handlers] == ["command", "message", "event"]
    assert app.middlewares == [mw]
    assert app.error_hooks == [hook]
    assert len(app.prompts) == 2


# routing --------------------------------------------------------------------------------
async def test_first_matching_handler_wins() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.message(keywords=["hello"])
    async def first(ctx: TurnContext) -> None:
        seen.append("first")

    @app.message()
    async def second(ctx: TurnContext) -> None:
        seen.append("second")

    result, _ = await _run(app, make_inbound("hello there"))
    assert result is DispatchResult.HANDLED
    assert seen == ["first"]
    await _run(app, make_inbound("bye"))
    assert seen == ["first", "second"]


async def test_extras_reach_the_context() -> None:
    app = BotApp()
    got: dict[str, Any] = {}

    @app.command("order")
    async def order(ctx: TurnContext) -> None:
        assert ctx.command is not None
        got["args"] = ctx.command.args

    @app.message(regex=r"track (?P<no>\d+)")
    async def track(ctx: TurnContext) -> None:
        assert ctx.match is not None
        got["no"] = ctx.match["no"]

    await _run(app, make_inbound("/order 1 2"))
    await _run(app, make_inbound("track 99"))
    assert got == {"args": ("1", "2"), "no": "99"}


async def test_group_message_without_mention_is_ignored() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.message()
    async def echo(ctx: TurnContext) -> None:
        seen.append(ctx.text)

    result, _ = await _run(app, make_inbound("hi all", chat_type="group"))
    assert result is DispatchResult.IGNORED
    assert seen == []
    result, _ = await _run(app, make_inbound("hi bot", chat_type="group", mentioned=True))
    assert result is DispatchResult.HANDLED
    assert seen == ["hi bot"]


async def test_addressed_only_false_sees_every_group_message() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.message(keywords=["spam"], addressed_only=False)
    async def moderate(ctx: TurnContext) -> None:
        seen.append(ctx.text)

    result, _ = await _run(app, make_inbound("spam!", chat_type="group"))
    assert result is DispatchResult.HANDLED
    assert seen == ["spam!"]


async def test_commands_work_in_groups_without_mention() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.command("reset")
    async def reset(ctx: TurnContext) -> None:
        seen.append("reset")

    result, _ = await _run(app, make_inbound("/reset", chat_type="group", mentioned=False))
    assert result is DispatchResult.HANDLED
    assert seen == ["reset"]


async def test_message_options_group_and_channel() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.message(group=True, channel="feishu", addressed_only=False)
    async def feishu_groups(ctx: TurnContext) -> None:
        seen.append(ctx.text)

    await _run(app, make_inbound("a", chat_type="group", channel="web"))
    await _run(app, make_inbound("b", chat_type="private", channel="feishu"))
    await _run(app, make_inbound("c", chat_type="group", channel="feishu"))
    assert seen == ["c"]


async def test_events_and_messages_are_routed_apart() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.message()
    async def on_message(ctx: TurnContext) -> None:
        seen.append("message")

    @app.event("member_joined")
    async def on_join(ctx: TurnContext) -> None:
        seen.append("joined")

    joined = make_inbound("", kind="event", event_type="member_joined", chat_type="group",
                          mentioned=False)
    result, _ = await _run(app, joined)
    assert result is DispatchResult.HANDLED
    assert seen == ["joined"]
    other = make_inbound("", kind="event", event_type="card_action")
    result, _ = await _run(app, other)
    assert result is DispatchResult.IGNORED  # an event never falls through to @app.message
    assert seen == ["joined"]
    await _run(app, make_inbound("hi"))
    assert seen == ["joined", "message"]


# middleware --------------------------------------------------------------------------
async def test_middleware_order_outermost_first() -> None:
    app = BotApp()
    trace: list[str] = []

    @app.middleware
    async def outer(ctx: TurnContext, call_next: Any) -> None:
        trace.append("outer in")
        await call_next()
        trace.append("outer out")

    @app.middleware
    async def inner(ctx: TurnContext, call_next: Any) -> None:
        trace.append("inner in")
        await call_next()
        trace.append("inner out")

    @app.message()
    async def handler(ctx: TurnContext) -> None:
        trace.append("handler")

    result, _ = await _run(app, make_inbound("x"))
    assert result is DispatchResult.HANDLED
    assert trace == ["outer in", "inner in", "handler", "inner out", "outer out"]


async def test_middleware_short_circuit() -> None:
    app = BotApp()
    trace: list[str] = []

    @app.middleware
    async def block(ctx: TurnContext, call_next: Any) -> None:
        trace.append("blocked")

    @app.middleware
    async def never(ctx: TurnContext, call_next: Any) -> None:
        trace.append("never")
        await call_next()

    @app.message()
    async def handler(ctx: TurnContext) -> None:
        trace.append("handler")

    result, _ = await _run(app, make_inbound("x"))
    assert result is DispatchResult.IGNORED
    assert trace == ["blocked"]


# errors -------------------------------------------------------------------------------
async def test_error_hook_gets_exception_and_true_suppresses() -> None:
    app = BotApp()
    seen: list[BaseException] = []

    @app.message()
    async def boom(ctx: TurnContext) -> None:
        raise RuntimeError("boom")

    @app.error
    async def first_hook(ctx: TurnContext, exc: BaseException) -> bool | None:
        seen.append(exc)
        return None

    @app.error
    async def second_hook(ctx: TurnContext, exc: BaseException) -> bool:
        seen.append(exc)
        return True

    result, _ = await _run(app, make_inbound("x"))
    assert result is DispatchResult.FAILED_HANDLED
    assert len(seen) == 2
    assert all(isinstance(e, RuntimeError) and str(e) == "boom" for e in seen)


async def test_error_hook_returning_falsy_reraises() -> None:
    app = BotApp()
    seen: list[BaseException] = []

    @app.message()
    async def boom(ctx: TurnContext) -> None:
        raise ValueError("bad")

    @app.error
    async def hook(ctx: TurnContext, exc: BaseException) -> bool:
        seen.append(exc)
        return False

    with pytest.raises(ValueError, match="bad"):
        await _run(app, make_inbound("x"))
    assert len(seen) == 1


async def test_a_failing_error_hook_does_not_hide_the_handler_error() -> None:
    app = BotApp()

    @app.message()
    async def boom(ctx: TurnContext) -> None:
        raise ValueError("the real error")

    @app.error
    async def broken(ctx: TurnContext, exc: BaseException) -> bool:
        raise RuntimeError("hook bug")

    with pytest.raises(ValueError, match="the real error"):
        await _run(app, make_inbound("x"))


async def test_unhandled_error_raises() -> None:
    app = BotApp()

    @app.message()
    async def boom(ctx: TurnContext) -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await _run(app, make_inbound("x"))


async def test_error_in_middleware_reaches_hooks() -> None:
    app = BotApp()
    seen: list[str] = []

    @app.middleware
    async def broken(ctx: TurnContext, call_next: Any) -> None:
        raise RuntimeError("mw")

    @app.error
    async def hook(ctx: TurnContext, exc: BaseException) -> bool:
        seen.append(str(exc))
        return True

    result, _ = await _run(app, make_inbound("x"))
    assert result is DispatchResult.FAILED_HANDLED
    assert seen == ["mw"]


# default flow -------------------------------------------------------------------------
async def test_default_flow_used_when_nothing_matches() -> None:
    app = BotApp()
    app.default_flow("chat", temperature=0.1)

    @app.command("reset")
    async def reset(ctx: TurnContext) -> None:
        return None

    flows = _StubFlows()
    result, _ = await _run(app, make_inbound("tell me a joke"), flows)
    assert result is DispatchResult.FLOW
    assert flows.calls == [("chat", {"temperature": 0.1})]
    result, _ = await _run(app, make_inbound("/reset"), flows)
    assert result is DispatchResult.HANDLED
    assert len(flows.calls) == 1


async def test_default_flow_not_used_for_unaddressed_group_messages_or_events() -> None:
    app = BotApp()
    app.default_flow("chat")
    flows = _StubFlows()
    result, _ = await _run(app, make_inbound("chatter", chat_type="group"), flows)
    assert result is DispatchResult.IGNORED
    result, _ = await _run(app, make_inbound("", kind="event", event_type="x"), flows)
    assert result is DispatchResult.IGNORED
    assert flows.calls == []


async def test_no_default_flow_means_ignored() -> None:
    result, _ = await _run(BotApp(), make_inbound("hello"), _StubFlows())
    assert result is DispatchResult.IGNORED


async def test_ctx_flow_with_explicit_name_uses_only_given_options() -> None:
    app = BotApp()
    app.default_flow("chat", a=1)
    flows = _StubFlows()
    ctx = _ctx(app, make_inbound("x"), flows)
    assert await ctx.flow("rag", b=2) == "flow answer"
    assert await ctx.flow(c=3) == "flow answer"
    assert flows.calls == [("rag", {"b": 2}), ("chat", {"a": 1, "c": 3})]


# prompt plugins -----------------------------------------------------------------------
def _tagging(tag: str, trace: list[str]) -> Any:
    async def plugin(req: PromptRequest, call_next: CallNext) -> PromptResult:
        trace.append(f"{tag} in")
        req.system.append(tag)
        result = await call_next(req)
        trace.append(f"{tag} out")
        return result

    return plugin


async def test_prompt_plugins_order_then_registration() -> None:
    app = BotApp()
    trace: list[str] = []
    app.prompt(_tagging("late", trace), order=200)
    app.prompt(_tagging("default-1", trace))
    app.prompt(order=10)(_tagging("early", trace))
    app.prompt(_tagging("default-2", trace))
    seen_system: list[str] = []

    async def final(req: PromptRequest) -> PromptResult:
        seen_system.extend(req.system)
        return PromptResult(AIMessage("answer"))

    result = await chain_prompts(app.ordered_prompts(), final)(PromptRequest())
    assert result.text == "answer"
    assert seen_system == ["early", "default-1", "default-2", "late"]
    assert trace == ["early in", "default-1 in", "default-2 in", "late in",
                     "late out", "default-2 out", "default-1 out", "early out"]


async def test_prompt_plugin_can_short_circuit_and_rewrite() -> None:
    async def guard(req: PromptRequest, call_next: CallNext) -> PromptResult:
        if "forbidden" in req.metadata.get("topic", ""):
            return PromptResult(AIMessage("refused"))
        result = await call_next(req)
        return PromptResult(AIMessage(result.text.upper()))

    async def final(req: PromptRequest) -> PromptResult:
        return PromptResult(AIMessage("ok"))

    call = chain_prompts([guard], final)
    assert (await call(PromptRequest(metadata={"topic": "forbidden"}))).text == "refused"
    assert (await call(PromptRequest())).text == "OK"


async def test_prompt_result_text_from_content_parts() -> None:
    result = PromptResult(AIMessage(content=["a", {"type": "text", "text": "b"}]))
    assert result.text == "ab"


# tools --------------------------------------------------------------------------------
async def test_tool_builds_langchain_tool_with_schema() -> None:
    app = BotApp()

    @app.tool
    async def lookup_order(order_id: str, verbose: bool = False) -> str:
        """Look up an order by its id.

        Longer explanation the model does not need.
        """
        return f"order {order_id} verbose={verbose}"

    @app.tool(name="add", changes_state=True, timeout=5)
    def add_numbers(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    assert lookup_order.__name__ == "lookup_order"  # the original function came back
    assert set(app.tools) == {"lookup_order", "add"}
    tool = app.tools["lookup_order"].to_langchain()
    assert tool.name == "lookup_order"
    assert tool.description == "Look up an order by its id."
    assert tool.args["order_id"]["type"] == "string"
    assert tool.args["verbose"]["type"] == "boolean"
    assert tool.args["verbose"]["default"] is False
    schema = tool.tool_call_schema.model_json_schema()
    assert schema["required"] == ["order_id"]
    assert await tool.ainvoke({"order_id": "A1"}) == "order A1 verbose=False"
    spec = app.tools["add"]
    assert spec.changes_state is True
    assert spec.timeout == 5
    add = spec.to_langchain()
    assert add.args["a"]["type"] == "integer"
    assert add.invoke({"a": 2, "b": 3}) == 5


async def test_tool_without_docstring_is_rejected() -> None:
    app = BotApp()

    async def nodoc(x: int) -> int:
        return x

    with pytest.raises(DispatchError, match="docstring"):
        app.tool(nodoc)
    assert app.tools == {}


async def test_tool_duplicate_name_is_rejected() -> None:
    app = BotApp()

    @app.tool
    def ping() -> str:
        """Ping."""
        return "pong"

    def other() -> str:
        """Other."""
        return "x"

    with pytest.raises(DispatchError, match="twice"):
        app.tool(name="ping")(other)
    assert app.tools["ping"].fn is ping
