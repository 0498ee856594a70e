"""Human handoff: a conversation paused for a human agent, and the agent's side of it.

The customer-service flow pauses (a LangGraph interrupt, checkpointed in Redis) and the
runner opens a handoff here. While it is open, the user's messages are stored for the agent
and the bot does not answer. The agent reads and answers through :func:`handoff_router`
(``/handoff/{bot_id}/...``, bearer key); agent replies go out through the bot's own channel.
When the agent releases the conversation, the release sends the satisfaction question once
(when the flow opened the handoff with one), and the next user message resumes the flow; a
1-5 reply is stored with :meth:`HandoffDesk.rate` under ``KeyBuilder.feedback``.

Redis: ``handoff:{conv}`` hash (status, bot, last inbound message), ``handoff:{conv}:log``
list (the transcript for the agent), ``handoff:open:{bot}`` set of open conversations,
``handoff:{conv}:notified`` (the agents were told about this handoff: ``SET NX``, so a re-run
turn does not tell them twice; see :mod:`botcore.handoff_notify`).
"""

import hmac
import json
import time
from typing import TYPE_CHECKING, Annotated, Any

from redis.asyncio import Redis

from botcore.handoff_notify import HandoffNotifier
from botcore.keys import KeyBuilder
from botcore.message import InboundMessage, OutboundMessage
from botcore.metrics import record_rating, stored_rating
from botcore.sessions import HistoryEntry
from botcore.sessions.redis import RedisSessionStore

if TYPE_CHECKING:
    from fastapi import APIRouter

    from botcore.runtime import Runtime
# no ``from __future__ import annotations``: FastAPI reads the route signatures at runtime

__all__ = ["RATING_TTL", "SURVEY_TEXT", "HandoffDesk", "handoff_key", "handoff_router"]

#: The ``name`` of a human agent's replies in the session history.
AGENT_NAME = "human_agent"
#: The satisfaction question sent when an agent releases a conversation.
SURVEY_TEXT = ("本次人工服务已结束。请为客服的服务打分：回复 1-5（5 为非常满意）。/ The agent has "
               "finished. How satisfied are you? Reply with a number from 1 to 5 (5 = very).")
#: Seconds a satisfaction rating is kept (90 days, like the web widget's ratings).
RATING_TTL = 90 * 86_400


def handoff_key(keys: KeyBuilder, *parts: str) -> str:
    """Handoff key names (``KeyBuilder.handoff`` / ``handoff_open``)."""
    if parts[0] == "open":
        return keys.handoff_open(parts[1])
    return keys.handoff(parts[0], *parts[1:])


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class HandoffDesk:
    """Open, relay, answer and release handoffs (state in Redis, shared by every process).

    Args:
        redis: asyncio Redis client.
        keys: the key builder.
        ttl: seconds an idle handoff is kept.
        notifier: tells the agents' webhooks when a handoff opens (None: nobody is told).
    """

    def __init__(self, redis: Redis, keys: KeyBuilder, *, ttl: int = 7 * 86_400,
                 notifier: HandoffNotifier | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        self.notifier = notifier

    @classmethod
    def for_runtime(cls, runtime: "Runtime") -> "HandoffDesk":
        """The desk of a worker or web process: ``[handoff]`` ttl and notifications, the
        runtime's HTTP client (a client per notification when the runtime has none)."""
        settings = runtime.settings.handoff
        notifier = HandoffNotifier(settings, getattr(runtime, "http", None))
        return cls(runtime.redis, runtime.keys, ttl=settings.ttl, notifier=notifier)

    async def open(self, message: InboundMessage, reason: str = "", *,
                   survey: str = "") -> None:
        """Pause the conversation for an agent (idempotent) and log the user's message.

        ``survey``: the satisfaction question sent when the agent releases the conversation
        (empty: none). Then the notifier (if any) tells the agents, once per handoff: a
        re-run of the turn finds the ``notified`` marker and sends nothing. A notification
        that fails is logged, never raised.
        """
        conv = message.conversation.id
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(handoff_key(self.keys, conv), mapping={
                "status": "open", "bot_id": message.bot_id, "since": str(time.time()),
                "reason": reason, "survey": survey,
                "message": message.model_dump_json(exclude={"raw"})})
            pipe.expire(handoff_key(self.keys, conv), self.ttl)
            pipe.sadd(handoff_key(self.keys, "open", message.bot_id), conv)
            await pipe.execute()
        await self.relay(message)
        await self._notify(message, reason)

    async def _notify(self, message: InboundMessage, reason: str) -> None:
        if self.notifier is None or not self.notifier.targets:
            return
        marker = handoff_key(self.keys, message.conversation.id, "notified")
        if await self.redis.set(marker, message.dedupe_key, nx=True, ex=self.ttl):
            await self.notifier.opened(message, reason)

    async def relay(self, message: InboundMessage) -> None:
        """Store a user message for the agent (the bot does not answer it)."""
        conv = message.conversation.id
        await self._log(conv, "user", message.text)
        await self.redis.hset(handoff_key(self.keys, conv), "message",
                              message.model_dump_json(exclude={"raw"}))

    async def status(self, conversation_id: str) -> str | None:
        """``open``, ``released`` or None (no handoff)."""
        found = await self.redis.hget(handoff_key(self.keys, conversation_id), "status")
        return _s(found) if found is not None else None

    async def release(self, conversation_id: str) -> bool:
        """Hand the conversation back to the bot; False if it was not open."""
        key = handoff_key(self.keys, conversation_id)
        if await self.status(conversation_id) != "open":
            return False
        bot_id = _s(await self.redis.hget(key, "bot_id"))
        await self.redis.hset(key, "status", "released")
        await self.redis.srem(handoff_key(self.keys, "open", bot_id), conversation_id)
        return True

    async def survey_message(self, conversation_id: str) -> OutboundMessage | None:
        """The satisfaction question for a released handoff, once (None: no question, or
        already asked)."""
        key = handoff_key(self.keys, conversation_id)
        question = await self.redis.hget(key, "survey")
        last = await self.last_message(conversation_id)
        if (not question or last is None or await self.status(conversation_id) != "released"
                or not await self.redis.hsetnx(key, "survey_asked", "1")):
            return None
        return OutboundMessage(
            conversation=last.conversation, text=_s(question), reply_to=last.message_id,
            context=last.platform,
            idempotency_key=OutboundMessage.make_key(f"handoff-survey:{last.dedupe_key}", 0))

    async def rate(self, message: InboundMessage, rating: int) -> str:
        """Store the user's 1-5 rating of the human agent's help (``KeyBuilder.feedback``,
        kept :data:`RATING_TTL` seconds); returns the key."""
        key = self.keys.feedback(message.bot_id, message.conversation.id,
                                 f"handoff:{message.message_id}")
        previous = await self.redis.set(key, json.dumps({
            "kind": "handoff", "rating": rating, "conversation_id": message.conversation.id,
            "user_id": message.sender.id, "ts": time.time()}), ex=RATING_TTL, get=True)
        await record_rating(self.redis, self.keys, kind="handoff", bot_id=message.bot_id,
                            rating=str(rating), previous=stored_rating(previous))
        return key

    async def close(self, conversation_id: str) -> None:
        """Forget a released handoff once the flow has resumed."""
        await self.redis.delete(handoff_key(self.keys, conversation_id),
                                handoff_key(self.keys, conversation_id, "log"),
                                handoff_key(self.keys, conversation_id, "notified"))

    async def open_conversations(self, bot_id: str) -> list[str]:
        """Conversations of ``bot_id`` waiting for or talking to an agent."""
        return sorted(_s(c) for c in await self.redis.smembers(
            handoff_key(self.keys, "open", bot_id)))

    async def transcript(self, conversation_id: str) -> list[dict[str, Any]]:
        """What the user and the agent said since the handoff, oldest first."""
        raw = await self.redis.lrange(handoff_key(self.keys, conversation_id, "log"), 0, -1)
        return [json.loads(item) for item in raw]

    async def last_message(self, conversation_id: str) -> InboundMessage | None:
        """The user's latest message (its ``platform`` dict lets the agent answer)."""
        raw = await self.redis.hget(handoff_key(self.keys, conversation_id), "message")
        return InboundMessage.model_validate_json(raw) if raw else None

    async def agent_message(self, conversation_id: str, text: str) -> OutboundMessage | None:
        """Log an agent reply and build the message to send on the user's channel."""
        last = await self.last_message(conversation_id)
        if last is None or await self.status(conversation_id) != "open":
            return None
        count = await self._log(conversation_id, "agent", text)
        return OutboundMessage(
            conversation=last.conversation, text=text, reply_to=last.message_id,
            context=last.platform,
            idempotency_key=OutboundMessage.make_key(f"handoff:{last.dedupe_key}", count))

    async def _log(self, conversation_id: str, role: str, text: str) -> int:
        key = handoff_key(self.keys, conversation_id, "log")
        count = int(await self.redis.rpush(key, json.dumps(
            {"role": role, "text": text, "ts": time.time()}, ensure_ascii=False)))
        await self.redis.expire(key, self.ttl)
        return count


def handoff_router(api_key: str | None) -> "APIRouter":
    """Routes for human agents (mount with ``app.include_router``); closed without a key.

    * ``GET /handoff/{bot_id}`` — open conversations;
    * ``GET /handoff/{bot_id}/{conversation}`` — status and transcript;
    * ``POST /handoff/{bot_id}/{conversation}/reply`` ``{"text": ...}`` — answer the user;
    * ``POST /handoff/{bot_id}/{conversation}/release`` — give the conversation back (and
      send the satisfaction question, if any, on the user's channel).

    Every request needs ``Authorization: Bearer <api_key>``. The web app's
    ``app.state.runtime`` supplies Redis, keys and the channel adapters.
    """
    from fastapi import APIRouter, Body, Depends, HTTPException, Request

    def check(request: Request) -> HandoffDesk:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not api_key or not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPException(403, "handoff key required")
        runtime: Runtime = request.app.state.runtime
        return HandoffDesk(runtime.redis, runtime.keys)

    Desk = Annotated[HandoffDesk, Depends(check)]
    router = APIRouter(prefix="/handoff")

    @router.get("/{bot_id}")
    async def list_open(bot_id: str, desk: Desk) -> dict[str, Any]:
        return {"bot_id": bot_id, "conversations": await desk.open_conversations(bot_id)}

    @router.get("/{bot_id}/{conversation}")
    async def show(bot_id: str, conversation: str,
                   desk: Desk) -> dict[str, Any]:
        return {"status": await desk.status(conversation),
                "transcript": await desk.transcript(conversation)}

    @router.post("/{bot_id}/{conversation}/reply")
    async def reply(bot_id: str, conversation: str, request: Request,
                    text: Annotated[str, Body(embed=True)], desk: Desk) -> dict[str, Any]:
        out = await desk.agent_message(conversation, text)
        if out is None or out.conversation.bot_id != bot_id:
            raise HTTPException(409, "no open handoff for this conversation")
        runtime: Runtime = request.app.state.runtime
        sent = await runtime.adapter_for(bot_id, out.conversation.channel).send(out)
        # Into the conversation's history, in order, so the bot knows what the agent
        # answered or promised once the conversation is back with it.
        store = RedisSessionStore.from_settings(runtime.redis, runtime.keys,
                                                runtime.settings.sessions)
        await store.append(out.conversation, HistoryEntry(role="assistant", content=text,
                                                          name=AGENT_NAME))
        return {"sent": True, "message_id": sent.message_id}

    @router.post("/{bot_id}/{conversation}/release")
    async def release(bot_id: str, conversation: str, request: Request,
                      desk: Desk) -> dict[str, Any]:
        released = await desk.release(conversation)
        out = await desk.survey_message(conversation) if released else None
        if out is None or out.conversation.bot_id != bot_id:
            return {"released": released, "survey_sent": False}
        runtime: Runtime = request.app.state.runtime
        await runtime.adapter_for(bot_id, out.conversation.channel).send(out)
        return {"released": True, "survey_sent": True}

    return router
