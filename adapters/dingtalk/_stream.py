"""Stream mode on top of the official ``dingtalk-stream`` SDK.

The SDK supplies the frame classes (``CallbackMessage``, ``SystemMessage``, ``AckMessage``),
the handler base classes and the client's handler registry. Two things are ours:

* :class:`BotMessageHandler` acks a robot message after ``await ingest(msg)`` returned (the
  durable write). Robot messages are fire-and-forget: DingTalk never re-pushes one, acked
  or not (platforms.md 2.2.6), so a failed write is retried here, with backoff, for a
  bounded time; only then is the message given up (an error log naming its ``msgId``);
* :class:`StreamClient.start` replaces the SDK's loop: the connection is opened through the
  shared ``httpx`` client (the SDK uses blocking ``requests``), frames are handled
  concurrently, reconnects back off exponentially with jitter, and an idle watchdog closes
  a socket on which no frame (not even a ping) arrived for ``idle_timeout`` seconds:
  DingTalk can stop delivering on a connection that still looks open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote_plus

import httpx
import websockets
from dingtalk_stream import (
    AckMessage,
    CallbackHandler,
    CallbackMessage,
    ChatbotMessage,
    Credential,
    DingTalkStreamClient,
    EventMessage,
    SystemMessage,
)
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_delay,
    wait_random_exponential,
)

from adapters.dingtalk.api import request_json
from botcore.channel import IngestFn
from botcore.message import InboundMessage

__all__ = ["BotMessageHandler", "StreamClient", "make_stream_client"]

log = logging.getLogger(__name__)

Parser = Callable[[Mapping[str, Any]], InboundMessage | None]


class BotMessageHandler(CallbackHandler):  # type: ignore[misc]  # untyped SDK base
    """A ChatbotHandler-like callback handler: parse, ``await ingest(msg)``, then ack.

    Args:
        parse: the adapter's parser (the same one HTTP mode uses).
        ingest: botcore's durable ingress; returns once the message is stored.
        retry_for: seconds a failing durable write is retried before the message is given
            up (DingTalk will not send it again).
        wait_initial: first backoff wait, seconds (doubling, full jitter).
        wait_max: longest backoff wait, seconds.
    """

    def __init__(self, parse: Parser, ingest: IngestFn, *, retry_for: float = 120.0,
                 wait_initial: float = 0.2, wait_max: float = 10.0) -> None:
        super().__init__()
        self._parse = parse
        self._ingest = ingest
        self.retry_for = retry_for
        self.wait_initial = wait_initial
        self.wait_max = wait_max

    async def process(self, message: CallbackMessage) -> tuple[int, str]:
        """Store the message; ``(200, "OK")`` means the ack goes back at once."""
        try:
            inbound = self._parse(message.data)
        except (ValidationError, ValueError, TypeError):
            # Nothing can repair a malformed message: ack it and move on.
            log.warning("dingtalk stream: malformed robot message %s dropped",
                        message.headers.message_id)
            return AckMessage.STATUS_OK, "OK"
        if inbound is not None:
            await self._store(inbound)
        return AckMessage.STATUS_OK, "OK"

    async def _store(self, inbound: InboundMessage) -> None:
        """``ingest`` with retries; logs (msgId, never content) and returns when it gives up."""
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            stop=stop_after_delay(self.retry_for),
            wait=wait_random_exponential(multiplier=self.wait_initial, max=self.wait_max),
            before_sleep=lambda state: log.warning(
                "dingtalk stream: durable write failed for msgId %s (attempt %d, %s); "
                "retrying", inbound.event_id, state.attempt_number,
                type(state.outcome.exception()).__name__ if state.outcome else "?"),
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._ingest(inbound)
        except RetryError as exc:
            error = exc.last_attempt.exception()
            log.error("dingtalk stream: message msgId %s LOST: durable write failed for %.0f s "
                      "(%d attempts, last %s); DingTalk does not redeliver robot messages",
                      inbound.event_id, self.retry_for, exc.last_attempt.attempt_number,
                      type(error).__name__)


class StreamClient(DingTalkStreamClient):  # type: ignore[misc]  # untyped SDK base
    """The SDK client with an async connection loop, backoff and an idle watchdog.

    Args:
        credential: the app's ``Credential(client_id, client_secret)``.
        http: shared HTTP client (opens the connection: ``POST /v1.0/gateway/connections/open``).
        api_base: OpenAPI base URL.
        idle_timeout: close and reconnect after this many seconds without any frame.
    """

    backoff_base = 1.0
    backoff_max = 60.0

    def __init__(self, credential: Credential, http: httpx.AsyncClient, api_base: str, *,
                 idle_timeout: float = 120.0) -> None:
        super().__init__(credential, logger=log)
        self._http = http
        self._api_base = api_base.rstrip("/")
        self.idle_timeout = idle_timeout
        self.last_frame = time.monotonic()
        self.connections = 0

    async def open_connection_async(self) -> tuple[str, str]:
        """Ask for an endpoint and a one-use ticket (valid 90 s)."""
        topics = [{"type": "CALLBACK", "topic": topic} for topic in self.callback_handler_map]
        data = await request_json(self._http, "POST",
                                  f"{self._api_base}/v1.0/gateway/connections/open", body={
            "clientId": self.credential.client_id,
            "clientSecret": self.credential.client_secret,
            "subscriptions": topics, "ua": "botcore-dingtalk", "localIp": "",
        })
        return str(data["endpoint"]), str(data["ticket"])

    def backoff(self, failures: int) -> float:
        """Seconds to wait before reconnecting after ``failures`` failed connections."""
        if failures <= 0:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** (failures - 1))
        return float(ceiling * random.uniform(0.5, 1.0))

    async def start(self) -> None:
        """Connect, serve, reconnect; runs until cancelled."""
        self.pre_start()
        failures = 0
        while True:
            try:
                healthy = await self.connect_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("dingtalk stream: connection failed (%s)", type(exc).__name__)
                healthy = False
            failures = 0 if healthy else failures + 1
            await asyncio.sleep(self.backoff(failures))

    async def connect_once(self) -> bool:
        """Serve one connection until it closes; True if at least one frame arrived."""
        endpoint, ticket = await self.open_connection_async()
        got_frame = False
        tasks: set[asyncio.Task[None]] = set()
        async with websockets.connect(f"{endpoint}?ticket={quote_plus(ticket)}") as ws:
            self.websocket = ws
            self.connections += 1
            self.last_frame = time.monotonic()
            watchdog = asyncio.create_task(self._watchdog(ws))
            try:
                async for raw in ws:
                    self.last_frame = time.monotonic()
                    got_frame = True
                    task = asyncio.create_task(self._handle(ws, raw))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                watchdog.cancel()
                if tasks:  # let in-flight ingests finish; their acks may be lost
                    await asyncio.wait(tasks, timeout=10)
        return got_frame

    async def _watchdog(self, ws: Any) -> None:
        step = min(5.0, self.idle_timeout / 4)
        while True:
            await asyncio.sleep(step)
            if time.monotonic() - self.last_frame > self.idle_timeout:
                log.warning("dingtalk stream: no frame for %.0f s; reconnecting",
                            self.idle_timeout)
                await ws.close()
                return

    async def _handle(self, ws: Any, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
            ack, disconnect = await self.route(frame)
            if ack is not None:
                await ws.send(json.dumps(ack.to_dict()))
            if disconnect:
                await ws.close()
        except Exception as exc:
            log.warning("dingtalk stream: frame not handled (%s)", type(exc).__name__)

    async def route(self, frame: Mapping[str, Any]) -> tuple[AckMessage | None, bool]:
        """Dispatch one frame to the SDK handlers: ``(ack to send, disconnect requested)``.

        Unlike the SDK's ``route_message`` this never logs frame contents.
        """
        kind = frame.get("type")
        if kind == SystemMessage.TYPE:
            msg = SystemMessage.from_dict(frame)
            if msg.headers.topic == SystemMessage.TOPIC_DISCONNECT:
                return None, True  # the protocol: no ack, reconnect with a new ticket
            return await self.system_handler.raw_process(msg), False
        if kind == CallbackMessage.TYPE:
            msg = CallbackMessage.from_dict(frame)
            handler = self.callback_handler_map.get(msg.headers.topic)
            return (await handler.raw_process(msg) if handler else None), False
        if kind == EventMessage.TYPE:
            return await self.event_handler.raw_process(EventMessage.from_dict(frame)), False
        return None, False


def make_stream_client(client_id: str, client_secret: str, http: httpx.AsyncClient,
                       api_base: str, handler: BotMessageHandler, *,
                       idle_timeout: float) -> StreamClient:
    """A StreamClient subscribed to robot messages with ``handler``."""
    client = StreamClient(Credential(client_id, client_secret), http, api_base,
                          idle_timeout=idle_timeout)
    client.register_callback_handler(ChatbotMessage.TOPIC, handler)
    return client
