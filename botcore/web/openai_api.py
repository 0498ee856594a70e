"""An OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client (the ``openai`` SDK, ChatBox, LangChain's ``ChatOpenAI``...) talks to a bot
with base URL ``http://HOST:8000/v1``, the bot id as the model name and one of the bot's
``api_keys`` as the key. The answer goes through the ordinary pipeline: the request becomes an
:class:`~botcore.message.InboundMessage` on the ``web`` channel, is ingested (dedupe → inbox →
schedule), answered by a worker, and read back from the conversation's reply stream.

Conversations (every conversation id is scoped by the API key):

* named: the ``X-Botcore-Conversation`` header, else the ``user`` field;
* else derived from the client's history: a hash of the ``system`` prompt and the **first**
  user message, so a stateless client (ChatBox) that resends its whole history stays in one
  conversation, and confirmations and handoffs work. Two chats that open with the same words
  under one key share a conversation: such clients should send ``user``.

botcore keeps the history in its own session: only the **last** user message of
``messages`` is the new turn. When that session is empty (a new or expired conversation),
it is first seeded with the client's earlier ``user``/``assistant`` messages.

``system`` messages only name the conversation: the bot's own prompt plugins decide its
persona.

A turn ends when the worker is done with the message (see :mod:`botcore.web.openai_turn`).
The answer is all the turn's replies. A turn without a reply (a message relayed to a human
agent, a handler that answers nothing) is a 200 with empty content; no answer within the
timeout is a 200 with an explanatory content: neither is retried by clients (the OpenAI SDKs
and ChatBox retry 5xx, and each retry would be a new message). The non-standard
``botcore_status`` field (``answered``, ``merged``, ``no_reply``, ``handoff``, ``timeout``)
and the ``X-Botcore-Status`` header of non-streaming answers tell them apart. A message
merged into an earlier one's turn (``ingress.merge_window``) gets that turn's answer
(``merged``). Human-agent messages written since the conversation's previous request come
first, as ``[agent] <text>`` (see :mod:`botcore.web.openai_pending`).

An answer with sources (a RAG answer) carries them in a non-standard ``citations`` field:
on ``choices[0].message`` of a completion, on the ``delta`` of the last (``finish_reason``)
chunk of a stream. Each is a :class:`~botcore.message.Citation` object (``title``,
``source``, optional ``url``, ``page``, ``heading``). Clients that do not know the field
ignore it.

Browsers may call ``/v1`` from the origins in the bot's ``allowed_origins`` (CORS, with
preflight); requests carrying another ``Origin`` are refused with 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from botcore.errors import ConfigError, IngressError
from botcore.handoff import HandoffDesk
from botcore.message import ConversationKey, InboundMessage, Sender
from botcore.sessions import HistoryEntry, estimate_tokens
from botcore.sessions.redis import RedisSessionStore
from botcore.web.openai_models import (
    MAX_REQUEST_BYTES,
    ApiError,
    ChatRequest,
    parse_request,
    read_json,
)
from botcore.web.openai_pending import claim_agent_messages, preface
from botcore.web.openai_turn import REPLY_SEPARATOR, ClientText, Turn, TurnTimeout
from botcore.web.widget import origin_allowed
from botcore.webchat import WebChatAdapter

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from botcore.runtime import Runtime

__all__ = ["CONVERSATION_HEADER", "MAX_REQUEST_BYTES", "build_openai_router"]

#: The header naming the conversation (else the ``user`` field; else derived).
CONVERSATION_HEADER = "X-Botcore-Conversation"
#: The content of an answer that did not come in time (a 200: clients retry 5xx).
TIMEOUT_TEXT = ("(No answer within {timeout:g} s: the bot is busy. Your message was received "
                "and will be answered in this conversation; ask again in a moment.)")
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")
_Status = Literal["answered", "merged", "no_reply", "handoff", "timeout"]


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>' (one of the "
                       "bot's api_keys)", code="invalid_api_key")
    return token.strip()


def _bots_for_key(runtime: Runtime, key: str) -> list[str]:
    """Bots whose ``api_keys`` contain ``key``; every configured key is compared."""
    given = key.encode()
    granted = []
    for bot_id, bot in runtime.settings.bots.items():
        matched = False
        for secret in bot.api_keys:
            matched |= hmac.compare_digest(given, secret.get_secret_value().encode())
        if matched:
            granted.append(bot_id)
    if not granted:
        raise ApiError(401, "incorrect API key", code="invalid_api_key")
    return granted


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


def _conversation(request: Request, body: ChatRequest, key: str) -> tuple[str, bool]:
    """The chat id (scoped by key) and whether the client named it."""
    named = request.headers.get(CONVERSATION_HEADER.lower()) or body.user
    if named:
        return f"api-{_digest(key, named)}", True
    system = "\n".join(m.text for m in body.messages if m.role in ("system", "developer"))
    first = next(m.text for m in body.messages if m.role == "user")
    return f"apih-{_digest(key, 'history', system, first)}", False


def _last_user_text(body: ChatRequest) -> tuple[int, str]:
    for index in range(len(body.messages) - 1, -1, -1):
        if body.messages[index].role == "user":
            text = body.messages[index].text
            if not text.strip():
                raise ApiError(400, "the last user message has no text",
                               param=f"messages[{index}].content")
            return index, text
    raise ApiError(400, "messages must contain a user message", param="messages")


async def _seed(runtime: Runtime, conversation: ConversationKey, body: ChatRequest,
                upto: int) -> None:
    """Write the client's earlier turns into the session when it holds none."""
    entries = [HistoryEntry(role=m.role, content=m.text) for m in body.messages[:upto]
               if m.role in ("user", "assistant") and m.text]
    if entries:
        store = RedisSessionStore.from_settings(runtime.redis, runtime.keys,
                                                runtime.settings.sessions)
        if not await store.history(conversation):
            await store.append(conversation, *entries)


async def _last_entry_id(redis: Redis, key: str) -> str:
    newest = cast(list[tuple[bytes, Any]], await redis.xrevrange(key, count=1))
    return newest[0][0].decode() if newest else "0-0"


async def _start_turn(request: Request, body: ChatRequest, key: str) -> Turn:
    runtime: Runtime = request.app.state.runtime
    index, text = _last_user_text(body)
    chat_id, named = _conversation(request, body, key)
    conversation = ConversationKey(channel="web", bot_id=body.model, chat_id=chat_id)
    if not named:
        await _seed(runtime, conversation, body, index)
    event_id = uuid.uuid4().hex
    message = InboundMessage(
        channel="web", bot_id=body.model, conversation=conversation, event_id=event_id,
        message_id=event_id, chat_type="private", mentioned=True, text=text,
        sender=Sender(id=f"api-{hashlib.sha256(key.encode()).hexdigest()[:16]}"),
        platform={"conversation_id": chat_id, "source": "openai"},
    )
    outbox = runtime.keys.web_outbox(conversation.id)
    turn = Turn(message, outbox, runtime.keys.inbox(conversation.id),
                await _last_entry_id(runtime.redis, outbox),
                done_key=lambda envelope: runtime.keys.turn_done(conversation.id, envelope))
    try:
        await request.app.state.ingress.ingest(message)
    except IngressError:
        raise ApiError(503, "temporarily unable to store the message; retry",
                       type_="server_error", code="unavailable") from None
    await turn.locate(runtime.redis)
    turn.agent_messages = await claim_agent_messages(
        runtime.redis, runtime.keys, conversation.id, body.model, outbox, turn.start)
    return turn


async def _status(request: Request, turn: Turn, text: ClientText) -> tuple[_Status, str]:
    """How the turn ended (when it did): answered, merged into an earlier message's turn
    (then also the content that turn's replies add), no reply, or relayed to an agent."""
    if text.replies:
        return "answered", ""
    runtime: Runtime = request.app.state.runtime
    covering = await turn.covering(runtime.redis)
    if covering is not None and (replies := await turn.replies_to(runtime.redis, covering)):
        return "merged", "".join(text.feed(event) for event in replies)
    desk = HandoffDesk(runtime.redis, runtime.keys, ttl=runtime.settings.handoff.ttl)
    opened = await desk.status(turn.message.conversation.id) == "open"
    return ("handoff" if opened else "no_reply"), ""


def _usage(body: ChatRequest, answer: str) -> dict[str, int]:
    prompt = sum(estimate_tokens(m.text) for m in body.messages if m.text)
    completion = estimate_tokens(answer)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


async def _complete(request: Request, body: ChatRequest, turn: Turn, timeout: float,
                    cors: dict[str, str]) -> JSONResponse:
    redis: Redis = request.app.state.runtime.redis
    text = ClientText()
    shown = text.lead(preface(turn.agent_messages))
    try:
        async for event in turn.events(redis, timeout):
            text.feed(event)
        status, _ = await _status(request, turn, text)
        answer = text.answer
    except TurnTimeout:
        status, answer = "timeout", TIMEOUT_TEXT.format(timeout=timeout)
    answer = REPLY_SEPARATOR.join(part for part in (shown, answer) if part)
    message: dict[str, Any] = {"role": "assistant", "content": answer, "refusal": None}
    if text.citations:
        message["citations"] = text.citations
    return JSONResponse({
        "id": f"chatcmpl-{turn.message.event_id}", "object": "chat.completion",
        "created": int(time.time()), "model": body.model, "system_fingerprint": None,
        "choices": [{"index": 0, "message": message,
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(body, answer), "botcore_status": status,
    }, headers={"X-Botcore-Status": status, **cors})


def _chunk(turn: Turn, body: ChatRequest, delta: dict[str, Any],
           finish: str | None = None, **extra: Any) -> bytes:
    payload = {
        "id": f"chatcmpl-{turn.message.event_id}", "object": "chat.completion.chunk",
        "created": int(turn.message.timestamp), "model": body.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _stream(request: Request, body: ChatRequest, turn: Turn,
                  timeout: float) -> AsyncIterator[bytes]:
    redis: Redis = request.app.state.runtime.redis
    yield _chunk(turn, body, {"role": "assistant", "content": ""})
    text = ClientText()
    if shown := text.lead(preface(turn.agent_messages)):
        yield _chunk(turn, body, {"content": shown})
    try:
        async for event in turn.events(redis, timeout):
            if content := text.feed(event):
                yield _chunk(turn, body, {"content": content})
        status, more = await _status(request, turn, text)
        if more:
            yield _chunk(turn, body, {"content": more})
        answer = text.answer
    except TurnTimeout:
        status, answer = "timeout", TIMEOUT_TEXT.format(timeout=timeout)
        yield _chunk(turn, body, {"content": ("\n\n" if text.replies or shown else "") + answer})
    answer = REPLY_SEPARATOR.join(part for part in (shown, answer) if part)
    last = {"citations": text.citations} if text.citations else {}
    yield _chunk(turn, body, last, "stop", botcore_status=status)
    if body.stream_options is not None and body.stream_options.include_usage:
        usage = {"id": f"chatcmpl-{turn.message.event_id}", "object": "chat.completion.chunk",
                 "created": int(turn.message.timestamp), "model": body.model,
                 "choices": [], "usage": _usage(body, answer)}
        yield f"data: {json.dumps(usage, ensure_ascii=False)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _api_bots(runtime: Runtime) -> list[str]:
    """Bots reachable through ``/v1``: with API keys and a web front."""
    return [bot_id for bot_id, bot in runtime.settings.bots.items()
            if bot.api_keys and _origins(runtime, [bot_id]) is not None]


def _origins(runtime: Runtime, bots: list[str]) -> list[str] | None:
    """The ``allowed_origins`` of ``bots`` together (None: none of them has a web front)."""
    found: list[str] | None = None
    for bot_id in bots:
        try:
            adapter = runtime.adapter_for(bot_id, "web")
        except ConfigError:
            continue
        if isinstance(adapter, WebChatAdapter):
            found = [*(found or []), *adapter.config.allowed_origins]
    return found


def _cors(request: Request, bots: list[str]) -> dict[str, str]:
    """CORS headers for a browser at an allowed origin of ``bots``.

    Raises:
        ApiError: 403 when the request has an ``Origin`` none of ``bots`` allows.
    """
    origin = request.headers.get("origin")
    if not origin:
        return {}
    if not origin_allowed(request.headers, _origins(request.app.state.runtime, bots) or []):
        raise ApiError(403, f"origin {origin!r} is not allowed: add it to the bot's "
                       "allowed_origins", type_="permission_error", code="origin_not_allowed")
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": "X-Botcore-Status"}


def _preflight(request: Request) -> Response:
    """Answer a CORS preflight: allowed when some bot of ``/v1`` allows the origin."""
    try:
        headers = _cors(request, _api_bots(request.app.state.runtime))
    except ApiError as exc:
        return exc.response()
    asked = request.headers.get("access-control-request-headers", "").strip()
    allowed = asked if _HEADER_LIST.match(asked) else (
        f"Authorization, Content-Type, {CONVERSATION_HEADER}")
    headers |= {"Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": allowed, "Access-Control-Max-Age": "600"}
    return Response(status_code=204, headers=headers)


def build_openai_router(*, timeout: float = 120.0) -> APIRouter:
    """The OpenAI-compatible routes: ``POST /v1/chat/completions``, ``GET /v1/models``
    (and their CORS preflights).

    Args:
        timeout: seconds to wait for the bot's answer.

    Returns:
        A ``fastapi.APIRouter``; it reads ``app.state.runtime`` and ``app.state.ingress``.

    Example:
        >>> app.include_router(build_openai_router())   # doctest: +SKIP
    """
    router = APIRouter(prefix="/v1", tags=["openai"])

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        """Answer the last user message of ``messages`` through the bot named by ``model``."""
        runtime: Runtime = request.app.state.runtime
        cors: dict[str, str] = {}
        try:
            cors = _cors(request, _api_bots(runtime))
            key = _bearer(request)
            granted = _bots_for_key(runtime, key)
            body = parse_request(await read_json(request))
            if body.model not in granted:
                raise ApiError(404, f"the model '{body.model}' does not exist or you do not "
                               "have access to it", param="model", code="model_not_found")
            if _origins(runtime, [body.model]) is None:
                raise ApiError(404, f"the model '{body.model}' has no web front",
                               param="model", code="model_not_found")
            cors = _cors(request, [body.model])
            turn = await _start_turn(request, body, key)
            if not body.stream:
                return await _complete(request, body, turn, timeout, cors)
        except ApiError as exc:
            response = exc.response()
            response.headers.update(cors)
            return response
        return StreamingResponse(_stream(request, body, turn, timeout),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no", **cors})

    @router.get("/models", response_model=None)
    async def models(request: Request) -> Response:
        """The bots this key may use, as models (``id`` = bot id)."""
        cors: dict[str, str] = {}
        try:
            cors = _cors(request, _api_bots(request.app.state.runtime))
            granted = _bots_for_key(request.app.state.runtime, _bearer(request))
            cors = _cors(request, granted)
        except ApiError as exc:
            response = exc.response()
            response.headers.update(cors)
            return response
        data = [{"id": bot_id, "object": "model", "created": 0, "owned_by": "botcore"}
                for bot_id in granted]
        return JSONResponse({"object": "list", "data": data}, headers=cors)

    router.add_api_route("/chat/completions", _preflight, methods=["OPTIONS"],
                         include_in_schema=False)
    router.add_api_route("/models", _preflight, methods=["OPTIONS"], include_in_schema=False)
    return router
