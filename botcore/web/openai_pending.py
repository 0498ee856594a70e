"""Human-agent messages a ``/v1`` client has not been sent yet.

While a conversation is handed off, the agent answers through
``POST /handoff/{bot}/{conv}/reply`` (and the release may send the satisfaction question).
Those messages land in the conversation's reply stream (``keys.web_outbox``) whenever the
agent writes them, mostly while no ``/v1`` request is waiting. Each request therefore
**claims** the part of the stream it is the first to look at: a per-conversation cursor (the
last stream id checked for agent messages) is moved to the stream's end atomically, and the
agent messages between the old cursor and that end are put before the request's answer, one
by one, as ``[agent] <text>`` (see :func:`preface`). Two requests never claim the same entry,
so a message is delivered once.

An agent message is recognised by its event id: the handoff desk sends reply ``n`` of a
handoff with the idempotency key ``make_key("handoff:" + dedupe_key, n)`` and the question
with ``make_key("handoff-survey:" + dedupe_key, 0)``, where ``dedupe_key`` is the user's last
message's (``web:{bot}:{message id}`` for a ``/v1`` message, whose ``reply_to`` it is).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast

from botcore.message import OutboundMessage

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from botcore.keys import KeyBuilder

__all__ = ["AGENT_LABEL", "CURSOR_TTL", "claim_agent_messages", "preface", "reply_origin"]

#: Put before each agent message delivered to an API client.
AGENT_LABEL = "[agent] "
#: How long a conversation's cursor lives without requests, seconds.
CURSOR_TTL = 7 * 86_400
#: Bot replies of one turn are numbered from 0 (the apology) up to this.
_MAX_BOT_REPLIES = 64
#: Agent replies are numbered by their place in the handoff transcript, up to this.
_MAX_DESK_REPLIES = 1000
# KEYS: cursor. ARGV: stream id, ttl. Moves the cursor forward to ARGV[1]; returns the old one.
_CLAIM = """
local prev = redis.call('GET', KEYS[1])
local function after(a, b)
  local a1, a2 = string.match(a, '^(%d+)-(%d+)$')
  local b1, b2 = string.match(b, '^(%d+)-(%d+)$')
  if not a1 or not b1 then return true end
  a1, a2, b1, b2 = tonumber(a1), tonumber(a2), tonumber(b1), tonumber(b2)
  return a1 > b1 or (a1 == b1 and a2 > b2)
end
if not prev or after(ARGV[1], prev) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
else
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return prev or false
"""


def _cursor_key(keys: KeyBuilder, conversation_id: str) -> str:
    """The conversation's cursor: ``KeyBuilder.api_cursor``."""
    return keys.api_cursor(conversation_id)


def _stream_id(raw: str) -> tuple[int, int]:
    ms, _, seq = raw.partition("-")
    return int(ms or 0), int(seq or 0)


def reply_origin(fields: dict[str, str], bot_id: str) -> Literal["bot", "agent", "other"]:
    """Who wrote a ``message`` event that answers a ``/v1`` message: the bot's turn, the
    handoff desk (an agent reply or the satisfaction question), or something else."""
    reply_to = fields.get("reply_to", "")
    event_id = fields.get("id", "")
    if not reply_to or not event_id:
        return "other"
    dedupe = f"web:{bot_id}:{reply_to}"
    if any(OutboundMessage.make_key(dedupe, i) == event_id for i in range(_MAX_BOT_REPLIES)):
        return "bot"
    if OutboundMessage.make_key(f"handoff-survey:{dedupe}", 0) == event_id:
        return "agent"
    if any(OutboundMessage.make_key(f"handoff:{dedupe}", i) == event_id
           for i in range(1, _MAX_DESK_REPLIES + 1)):
        return "agent"
    return "other"


async def claim_agent_messages(redis: Redis, keys: KeyBuilder, conversation_id: str,
                               bot_id: str, outbox: str, end: str) -> list[str]:
    """Claim the reply stream up to ``end`` and return the agent messages in the claimed part.

    A conversation seen for the first time (no cursor) claims nothing before ``end``.

    Args:
        redis: asyncio Redis client.
        keys: the key builder.
        conversation_id: the conversation's id.
        bot_id: the bot (agent messages are recognised by ids built from it).
        outbox: the conversation's reply stream.
        end: the stream's newest id when the request started (``0-0``: empty).

    Returns:
        The texts of the agent messages, oldest first.
    """
    found = await redis.eval(_CLAIM, 1, _cursor_key(keys, conversation_id), end, CURSOR_TTL)
    if not found:
        return []
    prev = found.decode() if isinstance(found, bytes) else str(found)
    if _stream_id(prev) >= _stream_id(end):
        return []
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]],
                   await redis.xrange(outbox, min=f"({prev}", max=end))
    texts: list[str] = []
    for _id, raw in entries:
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        if fields.get("type") == "message" and reply_origin(fields, bot_id) == "agent":
            texts.append(fields.get("text", ""))
    return [text for text in texts if text]


def preface(texts: list[str]) -> str:
    """The agent messages as the start of an answer: ``[agent] <text>``, a blank line apart."""
    return "\n\n".join(AGENT_LABEL + text for text in texts)
