"""Streaming answers through CardKit: one card, its markdown element updated in place.

1. ``POST cardkit/v1/cards``: a JSON 2.0 card with ``streaming_mode: true``;
2. send it (reply or send) as ``interactive`` content ``{"type":"card","data":{"card_id"}}``;
3. ``PUT .../elements/{element_id}/content`` with the full text so far and an increasing
   ``sequence``, at most ``max_rate`` times a second (updates in between are coalesced:
   the next push carries the latest text);
4. ``finish``: the final text, then ``PATCH .../settings`` ``streaming_mode: false``.

A turn that is re-run (worker crash, failed update) opens the stream again with the same
idempotency key. The card id, the message id and the last sequence number are kept in the
:class:`~botcore.ledger.DeliveryLedger`, so the re-run continues the card the user already
sees instead of creating a new one (sending a new card under the same ``uuid`` would return
the first message, frozen at its partial text). Each sequence number is recorded *before*
it is used: a crash between the record and the call leaves a gap, never a repeat, and
CardKit only asks that sequences increase.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from botcore.errors import ChannelRateLimited
from botcore.ledger import DeliveryLedger
from botcore.message import SendResult
from botcore.outbound import send_with_retry

from .api import FeishuClient

__all__ = ["ELEMENT_ID", "CardStream", "streaming_card"]

ELEMENT_ID = "answer"

#: Sends IM content (msg_type, content, uuid) the way the adapter would; returns message_id.
Deliver = Callable[[str, dict[str, Any], str], Awaitable[str]]


def streaming_card(summary: str = "...") -> dict[str, Any]:
    """A JSON 2.0 card with streaming mode on and one empty markdown element."""
    return {
        "schema": "2.0",
        "config": {"streaming_mode": True, "summary": {"content": summary},
                   "streaming_config": {"print_strategy": "fast"}},
        "body": {"elements": [{"tag": "markdown", "element_id": ELEMENT_ID, "content": ""}]},
    }


class CardStream:
    """A :class:`~botcore.channel.MessageStream` backed by one CardKit card.

    Args:
        client: the Feishu API client.
        deliver: sends the card message (reply or send, per the outbound message).
        key: the reply's idempotency key; per-call uuids derive from it.
        ledger: keeps the card's handle per ``key`` so that a re-run continues the card.
        max_rate: content updates per second at most (Feishu: 10 per card).
        clock: monotonic clock, injectable for tests.
    """

    def __init__(self, client: FeishuClient, deliver: Deliver, key: str, *,
                 ledger: DeliveryLedger | None = None, max_rate: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._deliver = deliver
        self._key = key
        self._ledger = ledger
        self._interval = 1.0 / max_rate
        self._clock = clock
        self._card_id = ""
        self._message_id = ""
        self._sequence = 0
        self._shown = ""
        self._last_push = float("-inf")
        self._opened = False

    @property
    def card_id(self) -> str:
        """The CardKit card id ("" until the first update)."""
        return self._card_id

    def _uuid(self, tag: str) -> str:
        return f"{self._key}-{tag}{self._sequence}" if self._key else ""

    async def _keep(self, *, finished: bool = False) -> None:
        if self._ledger is not None:
            await self._ledger.keep_stream_handle(self._key, {
                "card_id": self._card_id, "message_id": self._message_id,
                "sequence": self._sequence, "finished": finished})

    async def _next_sequence(self) -> int:
        """The next sequence number, recorded before use (a re-run starts above it)."""
        self._sequence += 1
        await self._keep()
        return self._sequence

    async def _resume(self) -> bool:
        """Continue the card an earlier run of this reply opened; False if there is none."""
        handle = await self._ledger.stream_handle(self._key) if self._ledger else None
        if not handle or not handle.get("card_id"):
            return False
        self._card_id = str(handle["card_id"])
        self._message_id = str(handle.get("message_id") or "")
        self._sequence = int(handle.get("sequence") or 0)
        if handle.get("finished"):  # finished, yet re-run: stream into it again
            seq = await self._next_sequence()
            await send_with_retry(lambda: self._client.set_card_settings(
                self._card_id, {"config": {"streaming_mode": True}}, seq, self._uuid("r")))
        return True

    async def _open(self) -> None:
        if self._opened:
            return
        if not await self._resume():
            self._card_id = await send_with_retry(
                lambda: self._client.create_card(streaming_card()))
            await self._keep()  # before sending: a crash now re-uses this card
        if not self._message_id:  # same uuid: a message sent before a crash is answered
            card_ref = {"type": "card", "data": {"card_id": self._card_id}}
            self._message_id = await send_with_retry(
                lambda: self._deliver("interactive", card_ref, self._key))
            await self._keep()
        self._opened = True

    async def _push(self, text: str) -> None:
        seq = await self._next_sequence()
        await self._client.set_element_content(self._card_id, ELEMENT_ID, text, seq,
                                               self._uuid("c"))
        self._shown = text
        self._last_push = self._clock()

    async def update(self, text: str) -> None:
        """Show ``text`` (the whole answer so far), unless the last push was too recent."""
        await self._open()
        if text == self._shown or self._clock() - self._last_push < self._interval:
            return  # coalesced: the next update or finish() carries the newest text
        try:
            await self._push(text)
        except ChannelRateLimited:
            self._last_push = self._clock()  # skip this one; keep streaming

    async def finish(self, text: str) -> SendResult:
        """Show the final ``text`` and turn streaming mode off."""
        await self._open()
        if text != self._shown:
            await send_with_retry(lambda: self._push(text))
        seq = await self._next_sequence()
        await send_with_retry(lambda: self._client.set_card_settings(
            self._card_id, {"config": {"streaming_mode": False}}, seq, self._uuid("s")))
        await self._keep(finished=True)
        return SendResult(message_id=self._message_id or None,
                          extra={"card_id": self._card_id, "sequence": self._sequence})
