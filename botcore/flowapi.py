"""What a flow receives: the contract between botcore and the graphs in ``flows/``.

Flows are LangGraph graphs built by ``build_<name>_graph()`` and registered under the
``botcore.flows`` entry point group. Their dependencies arrive through
``Runtime[FlowContext]`` (LangGraph's ``context_schema``), never from settings or globals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from botcore.prompts import PromptRequest, PromptResult

__all__ = ["NO_MODEL_ANSWER", "FlowContext"]

NO_MODEL_ANSWER = (
    "这个机器人还没有配置语言模型。/ No language model is configured for this bot yet: "
    "set [llm] model and base_url in botcore.toml."
)


@dataclass
class FlowContext:
    """Dependencies injected into every flow run.

    Attributes:
        chat_model: the model, or None when none is configured.
        call_model: the model call wrapped in the bot's prompt plugins; it streams the
            answer to the user as tokens arrive.
        tools: the tools this bot allows.
        retriever: the knowledge-base retriever, if the bot has one.
        options: the flow's options from ``app.default_flow(name, **options)``.
        metadata: bot id, conversation id, channel.
    """

    chat_model: BaseChatModel | None
    call_model: Callable[[PromptRequest], Awaitable[PromptResult]]
    tools: list[BaseTool] = field(default_factory=list)
    retriever: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
