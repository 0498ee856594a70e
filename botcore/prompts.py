"""Prompt plugins: each wraps the next model call, like middleware around the LLM.

A plugin is ``async def plugin(req: PromptRequest, call_next) -> PromptResult``. It may add
system instructions or context before ``await call_next(req)``, and rewrite or check the
answer after. Plugins run in ``order`` (lowest first = outermost) for every model call of
every flow.

Example:
    >>> @app.prompt(order=10)                                    # doctest: +SKIP
    ... async def persona(req, call_next):
    ...     req.system.append("You are a support assistant.")
    ...     return await call_next(req)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

__all__ = ["CallNext", "PromptPlugin", "PromptRequest", "PromptResult", "chain_prompts"]


@dataclass
class PromptRequest:
    """One model call about to happen.

    Attributes:
        system: system instructions, joined with blank lines into one system message.
        messages: the conversation (history, the user's message, tool results).
        data: retrieved passages and other material given to the model as *data*, never as
            instructions (they are fenced in a separate message; see ``flows``).
        metadata: bot id, conversation id, flow name: for plugins that log or route.
    """

    system: list[str] = field(default_factory=list)
    messages: list[BaseMessage] = field(default_factory=list)
    data: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class PromptResult:
    """The model's answer (possibly with tool calls)."""

    message: AIMessage

    @property
    def text(self) -> str:
        """The answer's text content."""
        content = self.message.content
        if isinstance(content, str):
            return content
        return "".join(part if isinstance(part, str) else str(part.get("text", ""))
                       for part in content)


CallNext = Callable[[PromptRequest], Awaitable[PromptResult]]
PromptPlugin = Callable[[PromptRequest, CallNext], Awaitable[PromptResult]]


def chain_prompts(plugins: Sequence[PromptPlugin], final: CallNext) -> CallNext:
    """Wrap ``final`` (the real model call) in ``plugins``, the first one outermost."""
    call = final
    for plugin in reversed(plugins):
        call = _bind(plugin, call)
    return call


def _bind(plugin: PromptPlugin, call_next: CallNext) -> CallNext:
    async def wrapped(req: PromptRequest) -> PromptResult:
        return await plugin(req, call_next)

    return wrapped
