"""Tools a model may call, declared with ``@app.tool`` from a typed function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from botcore.errors import DispatchError

__all__ = ["ToolSpec"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A registered tool.

    Attributes:
        fn: the function; its signature and docstring become the schema the model sees.
        changes_state: the tool changes something (places an order, sends mail): flows ask
            the user to confirm before calling it.
        timeout: seconds before the call is abandoned.
    """

    fn: Callable[..., Any]
    name: str
    description: str
    changes_state: bool = False
    timeout: float = 30.0

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, name: str | None = None,
                      description: str | None = None, changes_state: bool = False,
                      timeout: float = 30.0) -> ToolSpec:
        """Build a spec; the docstring's first paragraph is the description."""
        doc = description or inspect.getdoc(fn) or ""
        if not doc:
            raise DispatchError(f"tool {fn.__name__!r} needs a docstring or description: "
                                "the model reads it to decide when to call the tool")
        return cls(fn=fn, name=name or fn.__name__, description=doc.split("\n\n")[0],
                   changes_state=changes_state, timeout=timeout)

    def to_langchain(self) -> BaseTool:
        """The LangChain tool (schema inferred from the signature)."""
        if inspect.iscoroutinefunction(self.fn):
            coroutine: Callable[..., Awaitable[Any]] = self.fn
            return StructuredTool.from_function(coroutine=coroutine, name=self.name,
                                                description=self.description)
        return StructuredTool.from_function(func=self.fn, name=self.name,
                                            description=self.description)
