"""BotApp: where a bot author registers handlers, tools and prompt plugins.

Decorators only append to the instance and return the function unchanged; nothing runs at
import (style rule R4).

Example:
    >>> app = BotApp("support")
    >>> @app.command("reset")
    ... async def reset(ctx: TurnContext) -> None:
    ...     await ctx.session.clear()
    ...     await ctx.reply("会话已重置")
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, overload

from langchain_core.language_models import BaseChatModel

from botcore import matchers as m
from botcore.context import TurnContext
from botcore.errors import DispatchError
from botcore.prompts import PromptPlugin
from botcore.tools import ToolSpec

__all__ = ["BotApp", "ErrorHook", "Handler", "HandlerFn", "Middleware"]

HandlerFn = Callable[[TurnContext], Awaitable[None]]
Middleware = Callable[[TurnContext, Callable[[], Awaitable[None]]], Awaitable[None]]
ErrorHook = Callable[[TurnContext, BaseException], Awaitable[bool | None]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered handler.

    ``addressed_only``: in group chats, only messages addressed to the bot (an @-mention or
    a reply to it) reach the handler. Commands are addressed by their slash.
    """

    kind: Literal["command", "message", "event"]
    matcher: m.Matcher
    fn: HandlerFn
    addressed_only: bool = True


class BotApp:
    """One bot's behaviour. A deployment may serve several, each with its own settings.

    Args:
        name: a name for logs.
        chat_model: a LangChain chat model that overrides ``[llm]`` settings (tests pass a
            scripted fake model here).
        apology: the answer when a turn fails for good; default from ``[ingress] apology``.
    """

    def __init__(self, name: str = "bot", *, chat_model: BaseChatModel | None = None,
                 apology: str | None = None) -> None:
        self.name = name
        self.chat_model = chat_model
        self.apology = apology
        self.handlers: list[Handler] = []
        self.tools: dict[str, ToolSpec] = {}
        self.prompts: list[tuple[int, int, PromptPlugin]] = []
        self.middlewares: list[Middleware] = []
        self.error_hooks: list[ErrorHook] = []
        self.default_flow_name: str | None = None
        self.default_flow_options: dict[str, Any] = {}

    # registration ---------------------------------------------------------------------
    def command(self, name: str, *aliases: str) -> Callable[[HandlerFn], HandlerFn]:
        """Handle ``/name`` (and aliases); ``ctx.command.args`` holds the arguments."""
        matcher = m.command(name, *aliases)

        def register(fn: HandlerFn) -> HandlerFn:
            self.handlers.append(Handler("command", matcher, fn, addressed_only=False))
            return fn

        return register

    def message(self, matcher: m.Matcher | None = None, *, regex: str | None = None,
                keywords: tuple[str, ...] | list[str] | None = None,
                channel: str | None = None, group: bool | None = None,
                addressed_only: bool = True) -> Callable[[HandlerFn], HandlerFn]:
        """Handle messages that match every given condition.

        Args:
            matcher: any matcher expression (``keyword("a") | regex("b")``).
            regex: the text matches this pattern; ``ctx.match`` holds the match.
            keywords: the text contains one of these words.
            channel: only this channel.
            group: True for group chats only, False for private chats only.
            addressed_only: in groups, only messages that @-mention or reply to the bot.
        """
        parts = [matcher] if matcher is not None else []
        if regex is not None:
            parts.append(m.regex(re.compile(regex)))
        if keywords:
            parts.append(m.keyword(*keywords))
        if channel is not None:
            parts.append(m.channel(channel))
        if group is not None:
            parts.append(m.group() if group else m.private())
        combined = m.all_of(parts) & ~m.event()

        def register(fn: HandlerFn) -> HandlerFn:
            self.handlers.append(Handler("message", combined, fn, addressed_only))
            return fn

        return register

    def event(self, *types: str) -> Callable[[HandlerFn], HandlerFn]:
        """Handle non-message events (``member_joined``, ``card_action``, ...)."""
        matcher = m.event(*types)

        def register(fn: HandlerFn) -> HandlerFn:
            self.handlers.append(Handler("event", matcher, fn, addressed_only=False))
            return fn

        return register

    @overload
    def tool(self, fn: F) -> F: ...
    @overload
    def tool(self, *, name: str | None = None, changes_state: bool = False,
             timeout: float = 30.0) -> Callable[[F], F]: ...

    def tool(self, fn: F | None = None, *, name: str | None = None,
             changes_state: bool = False, timeout: float = 30.0) -> F | Callable[[F], F]:
        """Register a tool the model may call; the schema comes from the signature."""
        def register(func: F) -> F:
            spec = ToolSpec.from_function(func, name=name, changes_state=changes_state,
                                          timeout=timeout)
            if spec.name in self.tools:
                raise DispatchError(f"tool {spec.name!r} is registered twice")
            self.tools[spec.name] = spec
            return func

        return register(fn) if fn is not None else register

    def prompt(self, fn: PromptPlugin | None = None, *,
               order: int = 100) -> Any:
        """Register a prompt plugin; lower ``order`` wraps outermost."""
        def register(func: PromptPlugin) -> PromptPlugin:
            self.prompts.append((order, len(self.prompts), func))
            return func

        return register(fn) if fn is not None else register

    def middleware(self, fn: Middleware) -> Middleware:
        """Register ``async def mw(ctx, call_next)`` around every turn."""
        self.middlewares.append(fn)
        return fn

    def error(self, fn: ErrorHook) -> ErrorHook:
        """Register ``async def hook(ctx, exc)``; return True when it handled the failure.

        Unhandled, the turn is run again (up to ``ingress.max_attempts``) and the hook sees
        each failed attempt: ``ctx.attempt`` says which.
        """
        self.error_hooks.append(fn)
        return fn

    def default_flow(self, name: str, **options: Any) -> None:
        """Send whatever no handler matches to flow ``name``."""
        self.default_flow_name = name
        self.default_flow_options = options

    # lookup ----------------------------------------------------------------------------
    def ordered_prompts(self) -> list[PromptPlugin]:
        """Prompt plugins in application order (outermost first)."""
        return [fn for _, _, fn in sorted(self.prompts, key=lambda item: item[:2])]

    def route(self, ctx: TurnContext) -> HandlerFn | None:
        """The first handler that matches (its extras are stored on ``ctx``), else None."""
        msg = ctx.message
        addressed = msg.chat_type == "private" or msg.mentioned
        for handler in self.handlers:
            if handler.addressed_only and not addressed:
                continue
            extras = handler.matcher(msg)
            if extras is not None:
                ctx.extras.update(extras)
                return handler.fn
        return None
