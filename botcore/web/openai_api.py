"""An OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Any OpenAI client (the ``openai`` SDK, ChatBox, LangChain's ``ChatOpenAI``...) talks to a bot
with base URL ``http://HOST:8000/v1``, the bot id as the model name and one of the bot's
``api_keys`` as the key. The answer goes through the ordinary pipeline: the request becomes an
:class:`~botcore.message.InboundMessage` on the ``web`` channel, is ingested (dedupe → inbox →
schedule), answered by a worker, and read back from the conversation's reply stream.

Conversations:

* with an id (``X-Botcore-Conversation`` header, else the ``user`` field), botcore keeps the
  history in its own session: only the **last** user message of ``messages`` is the new turn,
  the client's copy of the history is ignored. The id is scoped by the API key.
* without one, each request is a fresh conversation whose session is first seeded with the
  client's earlier ``user``/``assistant`` messages, so stateless clients keep their memory.

``system`` messages are ignored: the bot's own prompt plugins decide its persona.

An answer with sources (a RAG answer) carries them in a non-standard ``citations`` field:
on ``choices[0].message`` of a completion, on the ``delta`` of the last (``finish_reason``)
chunk of a stream. Each is a :class:`~botcore.message.Citation` object (``title``,
``source``, optional ``url``, ``page``, ``heading``). Clients that do not know the field
ignore it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from botcore.errors import ConfigError, IngressError
from botcore.message import ConversationKey, InboundMessage, OutboundMessage, Sender
from botcore.sessions import HistoryEntry, estimate_tokens
from botcore.sessions.redis import RedisSessionStore

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from botcore.runtime import Runtime

__all__ = ["CONVERSATION_HEADER", "MAX_REQUEST_BYTES", "build_openai_router"]

#: The header naming the conversation (else the ``user`` field; else a fresh one).
CONVERSATION_HEADER = "X-Botcore-Conversation"
#: Request bodies above this size are answered 413.
MAX_REQUEST_BYTES = 1024 * 1024
#: A reply may come in several streams (``ctx.stream()`` twice): their ids are checked.
_MAX_STREAMS = 8
#: XREAD blocks at most this long between deadline checks, ms.
_BLOCK_MS = 1000
_XReadReply = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class _ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_ContentPart] | None = None

    @property
    def text(self) -> str:
        """The text of the message (text parts joined; images and the like are ignored)."""
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class _ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=128)
    messages: list[_Message] = Field(min_length=1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    user: str | None = Field(None, max_length=256)


class ApiError(Exception):
    """A client or server error, answered in the OpenAI error format."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param,
                               "code": code}}

    def response(self) -> JSONResponse:
        """The error as a JSON response."""
        return JSONResponse(self.body, status_code=self.status)


def _param(loc: tuple[int | str, ...]) -> str:
    """``("messages", 0, "role")`` → ``messages[0].role``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


async def _read_json(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise ApiError(413, f"request body larger than {MAX_REQUEST_BYTES} bytes",
                       code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise ApiError(413, f"request body larger than {MAX_REQUEST_BYTES} bytes",
                           code="request_too_large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON", param="body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", param="body")
    return data


def _parse(data: dict[str, Any]) -> _ChatRequest:
    try:
        return _ChatRequest.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        param = _param(tuple(first["loc"]))
        raise ApiError(400, f"invalid '{param}': {first['msg']}", param=param) from None


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


def _conversation(request: Request, body: _ChatRequest, key: str) -> str | None:
    """The chat id for a client-named conversation (scoped by key), or None."""
    named = request.headers.get(CONVERSATION_HEADER.lower()) or body.user
    if not named:
        return None
    digest = hashlib.sha256(f"{key}\x00{named}".encode()).hexdigest()
    return f"api-{digest[:40]}"


def _last_user_text(body: _ChatRequest) -> tuple[int, str]:
    for index in range(len(body.messages) - 1, -1, -1):
        if body.messages[index].role == "user":
            text = body.messages[index].text
            if not text.strip():
                raise ApiError(400, "the last user message has no text",
                               param=f"messages[{index}].content")
            return index, text
    raise ApiError(400, "messages must contain a user message", param="messages")


async def _seed(runtime: Runtime, conversation: ConversationKey, body: _ChatRequest,
                upto: int) -> None:
    """Write the client's earlier turns into a fresh conversation's session."""
    entries = [HistoryEntry(role=m.role, content=m.text) for m in body.messages[:upto]
               if m.role in ("user", "assistant") and m.text]
    if entries:
        sessions = runtime.settings.sessions
        store = RedisSessionStore(runtime.redis, runtime.keys, ttl=sessions.ttl,
                                  max_turns=sessions.max_turns, max_tokens=sessions.max_tokens)
        await store.append(conversation, *entries)


async def _last_entry_id(redis: Redis, key: str) -> str:
    newest = cast(list[tuple[bytes, Any]], await redis.xrevrange(key, count=1))
    return newest[0][0].decode() if newest else "0-0"


class _Turn:
    """One request's message, and how to recognise its answer on the reply stream."""

    def __init__(self, message: InboundMessage, outbox: str, start: str) -> None:
        self.message = message
        self.outbox = outbox
        self.start = start
        self.stream_ids = {OutboundMessage.make_key(message.dedupe_key, index)
                           for index in range(_MAX_STREAMS + 1)}
        #: the answer's sources (set when its final message arrives)
        self.citations: list[Any] = []

    async def events(self, redis: Redis, timeout: float) -> AsyncIterator[tuple[str, str]]:
        """Yield ``("delta", text so far)`` items, then one ``("message", text)``.

        Raises:
            ApiError: 504 when no answer arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        last = self.start
        while (left := deadline - time.monotonic()) > 0:
            block = max(1, min(_BLOCK_MS, int(left * 1000)))
            reply = cast(_XReadReply, await redis.xread({self.outbox: last}, count=100,
                                                        block=block))
            for _key, entries in reply or []:
                for raw_id, raw in entries:
                    last = raw_id.decode()
                    fields = {k.decode(): v.decode() for k, v in raw.items()}
                    kind = fields.get("type")
                    if kind == "message" and fields.get("reply_to") == self.message.message_id:
                        self.citations = _citations(fields.get("citations"))
                        yield "message", fields.get("text", "")
                        return
                    if kind == "delta" and fields.get("stream_id") in self.stream_ids:
                        yield "delta", fields.get("text", "")
        raise ApiError(504, f"no answer within {timeout:g} s; the bot's workers may be busy "
                       "or down", type_="timeout_error", code="timeout")


def _citations(raw: str | None) -> list[Any]:
    """The ``citations`` field of a message event, parsed (``[]`` when absent or bad)."""
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return found if isinstance(found, list) else []


async def _start_turn(request: Request, body: _ChatRequest, key: str) -> _Turn:
    runtime: Runtime = request.app.state.runtime
    index, text = _last_user_text(body)
    named = _conversation(request, body, key)
    chat_id = named or f"api-{uuid.uuid4().hex}"
    conversation = ConversationKey(channel="web", bot_id=body.model, chat_id=chat_id)
    try:
        runtime.adapter_for(body.model, "web")
    except ConfigError:
        raise ApiError(404, f"the model '{body.model}' has no web front", param="model",
                       code="model_not_found") from None
    if named is None:
        await _seed(runtime, conversation, body, index)
    event_id = uuid.uuid4().hex
    message = InboundMessage(
        channel="web", bot_id=body.model, conversation=conversation, event_id=event_id,
        message_id=event_id, chat_type="private", mentioned=True, text=text,
        sender=Sender(id=f"api-{hashlib.sha256(key.encode()).hexdigest()[:16]}"),
        platform={"conversation_id": chat_id, "source": "openai"},
    )
    outbox = runtime.keys.web_outbox(conversation.id)
    turn = _Turn(message, outbox, await _last_entry_id(runtime.redis, outbox))
    try:
        await request.app.state.ingress.ingest(message)
    except IngressError:
        raise ApiError(503, "temporarily unable to store the message; retry",
                       type_="server_error", code="unavailable") from None
    return turn


def _usage(body: _ChatRequest, answer: str) -> dict[str, int]:
    prompt = sum(estimate_tokens(m.text) for m in body.messages if m.text)
    completion = estimate_tokens(answer)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


async def _complete(request: Request, body: _ChatRequest, turn: _Turn,
                    timeout: float) -> JSONResponse:
    redis: Redis = request.app.state.runtime.redis
    answer = ""
    async for kind, text in turn.events(redis, timeout):
        if kind == "message":
            answer = text
    message: dict[str, Any] = {"role": "assistant", "content": answer, "refusal": None}
    if turn.citations:
        message["citations"] = turn.citations
    return JSONResponse({
        "id": f"chatcmpl-{turn.message.event_id}", "object": "chat.completion",
        "created": int(time.time()), "model": body.model, "system_fingerprint": None,
        "choices": [{"index": 0, "message": message,
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": _usage(body, answer),
    })


def _chunk(turn: _Turn, body: _ChatRequest, delta: dict[str, Any],
           finish: str | None = None) -> bytes:
    payload = {
        "id": f"chatcmpl-{turn.message.event_id}", "object": "chat.completion.chunk",
        "created": int(turn.message.timestamp), "model": body.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _stream(request: Request, body: _ChatRequest, turn: _Turn,
                  timeout: float) -> AsyncIterator[bytes]:
    redis: Redis = request.app.state.runtime.redis
    yield _chunk(turn, body, {"role": "assistant", "content": ""})
    sent = ""
    try:
        async for _kind, text in turn.events(redis, timeout):
            # Deltas carry the whole text so far; a rewrite that is not an extension cannot
            # be taken back from the client, so it waits for the final text.
            if text.startswith(sent) and len(text) > len(sent):
                yield _chunk(turn, body, {"content": text[len(sent):]})
                sent = text
    except ApiError as exc:  # the status line is gone: report it the way OpenAI does
        yield f"data: {json.dumps(exc.body)}\n\n".encode()
        return
    yield _chunk(turn, body, {"citations": turn.citations} if turn.citations else {}, "stop")
    if body.stream_options is not None and body.stream_options.include_usage:
        usage = {"id": f"chatcmpl-{turn.message.event_id}", "object": "chat.completion.chunk",
                 "created": int(turn.message.timestamp), "model": body.model,
                 "choices": [], "usage": _usage(body, sent)}
        yield f"data: {json.dumps(usage, ensure_ascii=False)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def build_openai_router(*, timeout: float = 120.0) -> APIRouter:
    """The OpenAI-compatible routes: ``POST /v1/chat/completions``, ``GET /v1/models``.

    Args:
        timeout: seconds to wait for the bot's answer before a 504.

    Returns:
        A ``fastapi.APIRouter``; it reads ``app.state.runtime`` and ``app.state.ingress``.

    Example:
        >>> app.include_router(build_openai_router())   # doctest: +SKIP
    """
    router = APIRouter(prefix="/v1", tags=["openai"])

    @router.post("/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> Response:
        """Answer the last user message of ``messages`` through the bot named by ``model``."""
        try:
            key = _bearer(request)
            granted = _bots_for_key(request.app.state.runtime, key)
            body = _parse(await _read_json(request))
            if body.model not in granted:
                raise ApiError(404, f"the model '{body.model}' does not exist or you do not "
                               "have access to it", param="model", code="model_not_found")
            turn = await _start_turn(request, body, key)
            if not body.stream:
                return await _complete(request, body, turn, timeout)
        except ApiError as exc:
            return exc.response()
        return StreamingResponse(_stream(request, body, turn, timeout),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    @router.get("/models", response_model=None)
    async def models(request: Request) -> Response:
        """The bots this key may use, as models (``id`` = bot id)."""
        try:
            granted = _bots_for_key(request.app.state.runtime, _bearer(request))
        except ApiError as exc:
            return exc.response()
        data = [{"id": bot_id, "object": "model", "created": 0, "owned_by": "botcore"}
                for bot_id in granted]
        return JSONResponse({"object": "list", "data": data})

    return router
