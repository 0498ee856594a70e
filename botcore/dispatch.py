"""Dispatch one turn: middleware → first matching handler (or the default flow) → error hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from botcore.context import TurnContext
from botcore.message import EventType

__all__ = ["DispatchResult", "dispatch"]


class DispatchResult(StrEnum):
    """What a turn ended as."""

    HANDLED = "handled"
    FLOW = "flow"
    IGNORED = "ignored"
    FAILED_HANDLED = "failed_handled"


async def dispatch(ctx: TurnContext) -> DispatchResult:
    """Run one turn for ``ctx.message``.

    Raises whatever the handler raised unless an ``@app.error`` hook returned True (then
    the result is ``FAILED_HANDLED``); the worker retries, then dead-letters, the rest.
    """
    app = ctx.app
    result = DispatchResult.IGNORED

    async def route() -> None:
        nonlocal result
        handler = app.route(ctx)
        if handler is not None:
            result = DispatchResult.HANDLED
            await handler(ctx)
            return
        if await _default_answer(ctx):
            result = DispatchResult.HANDLED
            return
        addressed = ctx.message.chat_type == "private" or ctx.message.mentioned
        if app.default_flow_name and ctx.message.kind == "message" and addressed:
            result = DispatchResult.FLOW
            await ctx.flow()

    call: Callable[[], Awaitable[None]] = route
    for middleware in reversed(app.middlewares):
        call = _bind(middleware, ctx, call)
    try:
        await call()
    except Exception as exc:
        handled = False
        for hook in app.error_hooks:
            try:
                handled = bool(await hook(ctx, exc)) or handled
            except Exception as hook_error:  # a broken hook must not hide the real error
                ctx.log.error("error hook failed", hook=getattr(hook, "__name__", "?"),
                              error=type(hook_error).__name__)
        if not handled:
            raise
        return DispatchResult.FAILED_HANDLED
    return result


async def _default_answer(ctx: TurnContext) -> bool:
    """An ``unsupported`` event nobody handles gets the adapter's polite answer, if any."""
    message = ctx.message
    reply = message.event_data.get("reply")
    if (message.kind != "event" or message.event_type != EventType.UNSUPPORTED
            or not isinstance(reply, str) or not reply):
        return False
    await ctx.reply(reply)
    return True


def _bind(middleware: Callable[[TurnContext, Callable[[], Awaitable[None]]], Awaitable[None]],
          ctx: TurnContext, call_next: Callable[[], Awaitable[None]]) -> Callable[[],
                                                                               Awaitable[None]]:
    async def run() -> None:
        await middleware(ctx, call_next)

    return run
