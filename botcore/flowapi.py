"""What a flow receives: the contract between botcore and the graphs in ``flows/``.

Flows are LangGraph graphs built by ``build_<name>_graph()`` and registered under the
``botcore.flows`` entry point group. Their dependencies arrive through
``Runtime[FlowContext]`` (LangGraph's ``context_schema``), never from settings or globals.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.tools import BaseTool

from botcore.errors import FlowError
from botcore.prompts import PromptRequest, PromptResult

__all__ = [
    "DONT_KNOW",
    "NO_MODEL_ANSWER",
    "FlowContext",
    "ModelUnavailable",
    "Pause",
    "last_user_text",
    "tool_changes_state",
    "tool_timeout",
]

DONT_KNOW = ("抱歉，我在知识库里没有找到相关内容。/ Sorry, I don't know: nothing in the "
             "knowledge base answers that.")

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
        metadata: bot id, conversation id, channel, flow, ``sender_id`` (who wrote
            the message that started the run).

    Tools carry ``metadata={"changes_state": bool, "timeout": float}`` from ``@app.tool``.
    A model call asks for tools by name in ``PromptRequest.metadata["tools"]``; the runner
    binds only tools of :attr:`tools` (the ones this bot allows).
    """

    chat_model: BaseChatModel | None
    call_model: Callable[[PromptRequest], Awaitable[PromptResult]]
    tools: list[BaseTool] = field(default_factory=list)
    retriever: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


class Pause(TypedDict):
    """What a flow passes to LangGraph's ``interrupt()`` to wait for the user (or an agent).

    The runner shows ``text`` to the user (nothing when empty) and resumes the graph with
    ``{"text": <the user's next message>, "released": <handoff released?>}``. With
    ``sender`` set (a sender id, as in ``FlowContext.metadata["sender_id"]``), only that
    sender's message resumes the graph; the runner ignores other members' messages (group
    chats: nobody confirms a tool call for someone else).
    """

    kind: Literal["confirm", "handoff", "survey"]
    text: str
    sender: NotRequired[str]


class ModelUnavailable(FlowError):
    """Every configured model failed (timeouts, provider errors): answer with the apology."""


def last_user_text(messages: list[BaseMessage]) -> str:
    """The text of the newest human message ('' if none)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.text)
    return ""


def tool_changes_state(tool: BaseTool) -> bool:
    """Whether calling ``tool`` changes something (so the user confirms first)."""
    return bool((tool.metadata or {}).get("changes_state", False))


def tool_timeout(tool: BaseTool, default: float = 30.0) -> float:
    """Seconds before a call of ``tool`` is abandoned."""
    return float((tool.metadata or {}).get("timeout", default))
