"""TurnContext: the one argument every handler receives."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

import structlog

from botcore.channel import MessageStream
from botcore.matchers import CommandMatch
from botcore.message import Citation, InboundMessage, OutboundMessage, Segment, SendResult
from botcore.sessions import Session
from botcore.settings import BotConfig

if TYPE_CHECKING:
    from botcore.app import BotApp

__all__ = ["FlowRunner", "Replier", "TurnContext", "TurnStream"]


class Replier(Protocol):
    """How a context sends: the worker's implementation records every reply so that a
    re-run after a crash never sends it twice."""

    async def send(self, message: OutboundMessage) -> SendResult:
        """Send once per ``message.idempotency_key``."""

    async def open_stream(self, message: OutboundMessage) -> MessageStream:
        """A stream for ``message`` (a no-op one if this reply was already delivered)."""


class FlowRunner(Protocol):
    """Runs a named flow for a turn and returns the answer it gave."""

    async def run(self, name: str, ctx: TurnContext, options: dict[str, Any]) -> str:
        """Run flow ``name`` with ``options``; the flow answers through ``ctx``."""


class TurnStream:
    """An answer written while it is produced (``async with ctx.stream() as out``).

    Attributes:
        text: the answer so far.
        citations: the sources given to :meth:`TurnContext.stream`; the channel shows them
            with the final answer (they travel on the stream's template message).
    """

    def __init__(self, ctx: TurnContext, stream: MessageStream,
                 citations: tuple[Citation, ...] = ()) -> None:
        self._ctx = ctx
        self._stream = stream
        self.citations = citations
        self.text = ""
        self.finished = False

    async def write(self, delta: str) -> None:
        """Append ``delta`` and show the answer so far."""
        if delta:
            self.text += delta
            await self._stream.update(self.text)

    async def set(self, text: str) -> None:
        """Replace the whole answer so far."""
        self.text = text
        await self._stream.update(text)

    async def finish(self) -> None:
        """Show the final answer (idempotent)."""
        if not self.finished:
            self.finished = True
            await self._stream.finish(self.text)
            self._ctx.replies.append(self.text)

    async def __aenter__(self) -> TurnStream:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None and self.text:
            await self.finish()


@dataclass
class TurnContext:
    """Everything a handler needs for one turn.

    Attributes:
        message: the inbound message (or event).
        session: the conversation's history and variables.
        bot: this bot's settings.
        app: the BotApp handling the turn.
        log: a structlog logger bound to the trace id, bot and conversation.
        extras: what the matcher found (see :attr:`command`, :attr:`match`).
        replies: the texts sent in this turn, in order (recorded into history).
        attempt: which run of this turn this is (1 first; a failed or crashed turn is run
            again up to ``ingress.max_attempts``): error hooks run on every failed attempt,
            so alert on ``ctx.attempt == 1`` or count them.
    """

    message: InboundMessage
    session: Session
    bot: BotConfig
    app: BotApp
    replier: Replier
    flows: FlowRunner | None = None
    trace_id: str = ""
    log: Any = field(default_factory=lambda: structlog.get_logger("botcore.turn"))
    extras: dict[str, Any] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    attempt: int = 1
    _index: int = 0

    @property
    def text(self) -> str:
        """The message text (bot mention removed)."""
        return self.message.text

    @property
    def command(self) -> CommandMatch | None:
        """The parsed command, for handlers registered with ``@app.command``."""
        found = self.extras.get("command")
        return found if isinstance(found, CommandMatch) else None

    @property
    def match(self) -> re.Match[str] | None:
        """The regex match, for handlers registered with ``regex=``."""
        found = self.extras.get("match")
        return found if isinstance(found, re.Match) else None

    def _outbound(self, text: str, fmt: Literal["text", "markdown"],
                  attachments: Sequence[Segment] = (), card: dict[str, Any] | None = None,
                  buttons: Sequence[tuple[str, str]] = (),
                  citations: Sequence[Citation] = ()) -> OutboundMessage:
        self._index += 1
        return OutboundMessage(
            conversation=self.message.conversation, text=text, format=fmt,
            attachments=tuple(attachments), card=card, buttons=tuple(buttons),
            reply_to=self.message.message_id, context=self.message.platform,
            idempotency_key=OutboundMessage.make_key(self.message.dedupe_key, self._index),
            citations=tuple(citations),
        )

    async def reply(self, text: str = "", *, format: Literal["text", "markdown"] = "text",
                    attachments: Sequence[Segment] = (), card: dict[str, Any] | None = None,
                    buttons: Sequence[tuple[str, str]] = (),
                    citations: Sequence[Citation] = ()) -> SendResult:
        """Answer in this conversation. Sent at most once, even if the turn is re-run.

        Args:
            text: the answer.
            format: ``markdown`` where the channel renders it.
            attachments: images or files (``Segment(type="image", url=...)``).
            card: a channel-specific card payload.
            buttons: ``(label, value)`` pairs; a press comes back as a ``card_action`` event.
            citations: the answer's sources; channels that can (web, the OpenAI API) list
                them under the answer, the others ignore them.
        """
        result = await self.replier.send(
            self._outbound(text, format, attachments, card, buttons, citations))
        self.replies.append(text)
        return result

    async def stream(self, *, format: Literal["text", "markdown"] = "markdown",
                     citations: Sequence[Citation] = ()) -> TurnStream:
        """Start an answer that is shown while it is written.

        Args:
            format: ``markdown`` (default) where the channel renders it.
            citations: the answer's sources, shown with the final answer where the channel
                can. They are known before the text (retrieval comes first), so they are
                given here, on the message the stream is opened with.

        Example:
            >>> async with await ctx.stream() as out:     # doctest: +SKIP
            ...     async for token in tokens:
            ...         await out.write(token)
        """
        found = tuple(citations)
        stream = await self.replier.open_stream(self._outbound("", format, citations=found))
        return TurnStream(self, stream, found)

    async def flow(self, name: str | None = None, **options: Any) -> str:
        """Run a flow (default: the app's default flow); returns its answer."""
        if self.flows is None:
            from botcore.errors import FlowError

            raise FlowError("no flow runner in this context", flow=name or "")
        flow_name = name or self.app.default_flow_name or "chat"
        merged = {**self.app.default_flow_options, **options} if name is None else options
        return await self.flows.run(flow_name, self, merged)
