"""One ``/v1/chat/completions`` request's wait for its turn, and the text a streaming client
is sent.

A turn is over when the worker has popped its message from the conversation's inbox (it pops
only after the turn's replies are written to the reply stream). So the wait ends when the
answer is complete, also for turns that end without any reply (a message relayed to a human
agent, a handler that answers nothing); reading the reply stream once more after the pop
yields everything the turn wrote.

A streaming client cannot be told to forget text. :class:`ClientText` keeps what was sent
and, when a reply's final text does not extend it, sends a rule (``---``) and the whole final
text (see ``docs/channels/web.md``). Trailing whitespace of a partial answer is held back,
because final texts are often right-stripped before something is appended (the sources of a
RAG answer).

Merged turns: with ``ingress.merge_window``, a message that arrives while an earlier one of
the same sender waits is merged into that one's turn, whose replies answer the earlier
message. After ingesting, :meth:`Turn.locate` notes the messages ahead of this one in the
inbox; when the turn ends without a reply of its own, :meth:`Turn.covering` tells whether the
message had no turn of its own (the worker marks every message turn it ran with
``keys.turn_done``) and which earlier message's turn covered it: that turn's replies are the
answer (status ``merged``).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import ValidationError

from botcore.ingress.inbox import Envelope
from botcore.message import InboundMessage, OutboundMessage
from botcore.web.openai_pending import reply_origin

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["REPLY_SEPARATOR", "REWRITE_SEPARATOR", "AnswerEvent", "ClientText", "Turn",
           "TurnTimeout"]

#: Sent before a reply's whole final text when it does not extend what was streamed.
REWRITE_SEPARATOR = "\n\n---\n\n"
#: Between two replies of one turn.
REPLY_SEPARATOR = "\n\n"
#: A reply may come in several streams (``ctx.stream()`` twice): their ids are checked.
_MAX_STREAMS = 8
#: XREAD blocks at most this long between "is the turn over?" checks, ms.
_BLOCK_MS = 250
_XReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class TurnTimeout(Exception):
    """The turn did not end within the answer timeout."""


@dataclass(frozen=True)
class AnswerEvent:
    """A partial answer (``delta``: the stream's whole text so far) or a final reply."""

    kind: Literal["delta", "message"]
    text: str
    stream_id: str = ""
    citations: list[Any] = field(default_factory=list)


class Turn:
    """One request's message, and how to recognise its answer and its end."""

    def __init__(self, message: InboundMessage, outbox: str, inbox: str, start: str,
                 done_key: Callable[[str], str] | None = None) -> None:
        self.message = message
        self.outbox = outbox
        self.inbox = inbox
        self.start = start
        self.done_key = done_key
        self.envelope_id: str | None = None
        #: (envelope id, message id) of the sender's messages ahead of this one in the inbox.
        self.ahead: list[tuple[str, str]] = []
        #: Agent messages to put before the answer (see :mod:`botcore.web.openai_pending`).
        self.agent_messages: list[str] = []
        self.stream_ids = {OutboundMessage.make_key(message.dedupe_key, index)
                           for index in range(_MAX_STREAMS + 1)}

    async def _over(self, redis: Redis) -> bool:
        """The worker has popped the message (it pops after the turn's replies are written)."""
        pending = cast(list[bytes], await redis.lrange(self.inbox, 0, -1))
        marker = self.message.event_id.encode()
        return not any(marker in entry for entry in pending)

    async def locate(self, redis: Redis) -> None:
        """Note this message's inbox entry and the sender's messages ahead of it (call after
        ingesting; a message already popped had its own turn: merging needs it waiting)."""
        ahead: list[tuple[str, str]] = []
        for raw in cast(list[bytes], await redis.lrange(self.inbox, 0, -1)):
            try:
                entry = Envelope.model_validate_json(raw)
            except ValidationError:
                continue
            if entry.message.event_id == self.message.event_id:
                self.envelope_id, self.ahead = entry.id, ahead
                return
            if (entry.message.kind == "message"
                    and entry.message.sender.id == self.message.sender.id):
                ahead.append((entry.id, entry.message.message_id or ""))

    async def covering(self, redis: Redis) -> str | None:
        """The message id of the earlier message whose turn covered this one (merged into
        it), or None (this message had its own turn, or nothing tells)."""
        if self.done_key is None or self.envelope_id is None or not self.ahead:
            return None
        names = [self.done_key(self.envelope_id), *(self.done_key(e) for e, _ in self.ahead)]
        done = await redis.mget(names)
        if done[0] is not None:
            return None
        for (_, message_id), flag in zip(reversed(self.ahead), reversed(done[1:]), strict=True):
            if flag is not None:
                return message_id  # the latest message that had a turn: the merged batch's head
        return None

    async def replies_to(self, redis: Redis, message_id: str) -> list[AnswerEvent]:
        """The bot's replies to ``message_id`` written since this request started."""
        low = f"({self.start}" if self.start != "0-0" else "-"
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                       await redis.xrange(self.outbox, min=low, max="+"))
        found = []
        for _id, raw in entries:
            fields = {k.decode(): v.decode() for k, v in raw.items()}
            event = self._event(fields, message_id)
            if event is not None and event.kind == "message":
                found.append(event)
        return found

    async def events(self, redis: Redis, timeout: float) -> AsyncIterator[AnswerEvent]:
        """Yield the turn's partial answers and replies until the turn is over.

        Raises:
            TurnTimeout: the turn did not end within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last = self.start
        over = False
        while True:
            if not over:
                over = await self._over(redis)
            left = deadline - time.monotonic()
            if not over and left <= 0:
                raise TurnTimeout(f"no answer within {timeout:g} s")
            block = None if over else max(1, min(_BLOCK_MS, int(left * 1000)))
            reply = cast(_XReadReply, await redis.xread({self.outbox: last}, count=100,
                                                        block=block))
            read = False
            for _key, entries in reply or []:
                for raw_id, raw in entries:
                    read = True
                    last = raw_id.decode()
                    found = self._event({k.decode(): v.decode() for k, v in raw.items()})
                    if found is not None:
                        yield found
            if over and not read:
                return

    def _event(self, fields: dict[str, str], reply_to: str = "") -> AnswerEvent | None:
        kind = fields.get("type")
        if (kind == "message" and fields.get("reply_to") == (reply_to or self.message.message_id)
                and reply_origin(fields, self.message.bot_id) != "agent"):
            return AnswerEvent("message", fields.get("text", ""), fields.get("stream_id", ""),
                               _citations(fields.get("citations")))
        if kind == "delta" and fields.get("stream_id") in self.stream_ids:
            return AnswerEvent("delta", fields.get("text", ""), fields.get("stream_id", ""))
        return None


def _citations(raw: str | None) -> list[Any]:
    """The ``citations`` field of a message event, parsed (``[]`` when absent or bad)."""
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return found if isinstance(found, list) else []


class ClientText:
    """What a streaming client was sent, and what to send next so it ends with the answer.

    Attributes:
        replies: the final texts of the turn's replies, in order.
        citations: the sources of all replies.
    """

    def __init__(self) -> None:
        self.replies: list[str] = []
        self.citations: list[Any] = []
        self._stream: str | None = None
        self._current = ""
        self._shown = False

    @property
    def answer(self) -> str:
        """The turn's final answer: its replies, joined."""
        return REPLY_SEPARATOR.join(text for text in self.replies if text)

    def _emit(self, text: str, *, new_reply: bool) -> str:
        if not text:
            return ""
        out = (REPLY_SEPARATOR if new_reply and self._shown else "") + text
        self._shown = True
        return out

    def lead(self, text: str) -> str:
        """Send ``text`` before the turn's replies (they follow after a blank line)."""
        return self._emit(text, new_reply=True)

    def feed(self, event: AnswerEvent) -> str:
        """The content to send for ``event`` (``""``: nothing)."""
        if event.kind == "message":
            return self._final(event)
        if self._stream not in (None, event.stream_id):
            return ""  # another stream is open: this one shows when its reply arrives
        self._stream = event.stream_id
        visible = event.text.rstrip()  # trailing whitespace waits: the final may strip it
        if len(visible) <= len(self._current) or not visible.startswith(self._current):
            return ""  # a re-run starting over, or a rewrite: the final text settles it
        out = self._emit(visible[len(self._current):], new_reply=not self._current)
        self._current = visible
        return out

    def _final(self, event: AnswerEvent) -> str:
        current, self._current, self._stream = self._current, "", None
        self.replies.append(event.text)
        self.citations.extend(event.citations)
        if event.text.startswith(current):
            return self._emit(event.text[len(current):], new_reply=not current)
        return self._emit(REWRITE_SEPARATOR + event.text if event.text else "",
                          new_reply=False)
