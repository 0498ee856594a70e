"""Running turns in the worker: envelope → TurnContext → dispatch → history.

:class:`TurnRunner` is what the drain loop calls for each message (or merged burst). It
rebuilds everything from JSON (style rule R2), binds a logger to the trace id, and records
the exchange into the session's history once, even if the turn is re-run after a crash.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, cast

import structlog

from botcore.context import TurnContext
from botcore.dispatch import dispatch
from botcore.errors import ConfigError
from botcore.ingress.inbox import Envelope
from botcore.ingress.replier import IdempotentReplier
from botcore.message import InboundMessage, OutboundMessage
from botcore.sessions import HistoryEntry, Session, SessionStore

if TYPE_CHECKING:
    from botcore.context import FlowRunner
    from botcore.runtime import Runtime

__all__ = ["TurnRunner", "merge_messages"]

log = structlog.get_logger("botcore.turn")
#: Replies of one turn looked at for an unfinished one when apologising.
_REPLIES_SCANNED = 16


def merge_messages(entries: list[Envelope]) -> InboundMessage:
    """One message from a burst: the first one's identity, the lines joined by newlines."""
    first = entries[0].message
    if len(entries) == 1:
        return first
    text = "\n".join(entry.message.text for entry in entries if entry.message.text)
    segments = tuple(seg for entry in entries for seg in entry.message.segments)
    return first.model_copy(update={"text": text, "segments": segments,
                                    "mentioned": any(e.message.mentioned for e in entries)})


class TurnRunner:
    """Runs turns for every bot of a runtime."""

    def __init__(self, runtime: Runtime, sessions: SessionStore,
                 flows: FlowRunner | None) -> None:
        self.runtime = runtime
        self.sessions = sessions
        self.flows = flows
        self._repliers: dict[tuple[str, str], IdempotentReplier] = {}

    def replier(self, bot_id: str, channel: str) -> IdempotentReplier:
        """The replier for a bot's messages from ``channel`` (its own, or its web front)."""
        key = (bot_id, channel)
        if key not in self._repliers:
            adapter = self.runtime.adapter_for(bot_id, channel)
            self._repliers[key] = IdempotentReplier(adapter, self.runtime.redis,
                                                    self.runtime.keys)
        return self._repliers[key]

    def _context(self, message: InboundMessage, trace_id: str) -> TurnContext:
        bot_id = message.bot_id
        if bot_id not in self.runtime.apps:
            raise ConfigError(f"bots.{bot_id}", "a configured bot (the message names a bot "
                              "this worker does not know: are web and worker on one config?)")
        return TurnContext(
            message=message, session=Session(self.sessions, message.conversation),
            bot=self.runtime.settings.bots[bot_id], app=self.runtime.apps[bot_id],
            replier=self.replier(bot_id, message.channel), flows=self.flows, trace_id=trace_id,
            log=log.bind(trace_id=trace_id, bot=bot_id, channel=message.channel),
        )

    async def run(self, entries: list[Envelope], attempt: int) -> None:
        """Dispatch one turn; raises when it fails (the drain retries or dead-letters)."""
        message = merge_messages(entries)
        ctx = self._context(message, entries[0].trace_id)
        ctx.attempt = attempt
        ctx.log.info("turn started", attempt=attempt, merged=len(entries),
                     kind=message.kind, event_id=message.event_id)
        async with self._typing(message):
            result = await dispatch(ctx)
        ctx.log.info("turn done", result=str(result), replies=len(ctx.replies))
        if message.kind == "message" and ctx.command is None and message.text:
            await self._record(ctx, entries[0])

    def _typing(self, message: InboundMessage) -> AbstractAsyncContextManager[object]:
        """The adapter's "typing…" signal for the length of a message turn, if it has one
        (``typing_indicator``: see :mod:`botcore.channel`)."""
        if message.kind != "message":
            return contextlib.nullcontext()
        adapter = self.runtime.adapter_for(message.bot_id, message.channel)
        indicator = getattr(adapter, "typing_indicator", None)
        if indicator is None:
            return contextlib.nullcontext()
        template = OutboundMessage(conversation=message.conversation,
                                   context=message.platform)
        return cast("AbstractAsyncContextManager[object]", indicator(template))

    async def _record(self, ctx: TurnContext, entry: Envelope) -> None:
        marker = self.runtime.keys.turn_done(ctx.message.conversation.id, entry.id)
        if not await self.runtime.redis.set(marker, b"1", nx=True, ex=86_400):
            return  # written by an earlier run of this turn
        entries = [HistoryEntry(role="user", content=ctx.message.text,
                                name=ctx.message.sender.name)]
        entries += [HistoryEntry(role="assistant", content=text) for text in ctx.replies if text]
        await ctx.session.append(*entries)

    async def apologize(self, entry: Envelope, exc: BaseException | None) -> None:
        """Tell the user the message could not be handled (once; the error hooks already saw
        ``exc`` during dispatch)."""
        message = entry.message
        app = self._context(message, entry.trace_id).app
        text = app.apology or self.runtime.settings.ingress.apology
        unfinished = await self._unfinished_reply(message)
        out = OutboundMessage(
            conversation=message.conversation, text=text, reply_to=message.message_id,
            context=message.platform,
            idempotency_key=unfinished or OutboundMessage.make_key(message.dedupe_key, 0),
        )
        replier = self.replier(message.bot_id, message.channel)
        if unfinished is None:
            await replier.send(out)
            return
        # A reply was begun and never finished (a stream cut off by the failure): the
        # apology finishes that message, so no half answer is left "typing" on screen.
        stream = await replier.open_stream(out)
        await stream.finish(text)

    async def _unfinished_reply(self, message: InboundMessage) -> str | None:
        """The idempotency key of the first reply of this turn marked ``sending`` (begun, not
        done), if any: replies are numbered from 1 (0 is the apology's own key)."""
        names = [OutboundMessage.make_key(message.dedupe_key, i)
                 for i in range(1, _REPLIES_SCANNED + 1)]
        states = await self.runtime.redis.mget([self.runtime.keys.sent(n) for n in names])
        for name, state in zip(names, states, strict=True):
            if state == b"sending":
                return name
        return None
