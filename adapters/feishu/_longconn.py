"""The long connection: lark-oapi's WebSocket client, bridged onto the caller's event loop.

``lark_oapi.ws.Client.start()`` blocks and runs its own event loop, which lark-oapi keeps in a
module-level variable (``lark_oapi.ws.client.loop``). So the client runs in a worker thread
with a fresh loop of its own; each event handler call (in that thread) hands the raw event to
the caller's loop with ``asyncio.run_coroutine_threadsafe`` and waits for the durable
``ingest``. Only then does the handler return and lark-oapi acknowledge the frame; if ingest
fails the handler raises, lark-oapi answers 500 and Feishu pushes the event again.

lark-oapi is imported lazily: it is an optional dependency and slow to import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ._parse import HANDLED_EVENT_TYPES

__all__ = ["LarkSocket", "build_event_handler"]

log = logging.getLogger(__name__)

#: Called in lark-oapi's thread with one event's JSON; returns once it is durable.
OnEvent = Callable[[dict[str, Any]], None]


def build_event_handler(on_event: OnEvent) -> Any:
    """An ``EventDispatcherHandler`` that passes every event the parser handles to
    ``on_event``: messages, chat member / bot added or removed, p2p chat entered
    (:data:`~adapters.feishu._parse.HANDLED_EVENT_TYPES`) and card actions.

    Without a processor lark-oapi answers a subscribed event "processor not found" (500)
    and Feishu pushes it again. Events reach the processors as SDK objects;
    ``JSON.marshal`` turns them back into the event's JSON, so that the webhook's parser
    handles both paths.
    """
    import lark_oapi as lark
    from lark_oapi.event.callback.model.p2_card_action_trigger import (
        P2CardActionTriggerResponse,
    )

    def as_dict(event: Any) -> dict[str, Any]:
        data = json.loads(lark.JSON.marshal(event))
        return data if isinstance(data, dict) else {}

    def on_plain(event: Any) -> None:
        on_event(as_dict(event))

    def on_card(event: Any) -> Any:
        on_event(as_dict(event))
        return P2CardActionTriggerResponse({})

    builder = lark.EventDispatcherHandler.builder("", "")
    for event_type in HANDLED_EVENT_TYPES:
        builder = builder.register_p2_customized_event(event_type, on_plain)
    handler = builder.register_p2_card_action_trigger(on_card).build()
    return _ack_unknown_events(handler)


def _ack_unknown_events(handler: Any) -> Any:
    """Acknowledge (and drop) event types nobody handles, instead of lark-oapi's "processor
    not found" error, which Feishu answers by pushing the event again and again. The webhook
    path does the same: an event the parser does not know is accepted and ignored."""
    from lark_oapi.core.exception import EventException

    dispatch = handler._do_without_validation

    def do_without_validation(payload: bytes) -> Any:
        try:
            return dispatch(payload)
        except EventException as exc:
            if "processor not found" not in str(exc):
                raise
            log.info("feishu event type not handled; acknowledged and dropped: %s",
                     str(exc)[:120])
            return None

    handler._do_without_validation = do_without_validation
    return handler


def bridge(loop: asyncio.AbstractEventLoop,
           handle: Callable[[dict[str, Any]], Coroutine[Any, Any, None]], *,
           timeout: float = 2.5) -> OnEvent:
    """Make a thread-side ``on_event`` that runs ``handle`` on ``loop`` and waits for it.

    The timeout stays under Feishu's 3 s deadline: past it the frame is answered 500 and
    re-pushed rather than acknowledged without a durable write.
    """

    def on_event(payload: dict[str, Any]) -> None:
        future = asyncio.run_coroutine_threadsafe(handle(payload), loop)
        future.result(timeout=timeout)

    return on_event


class LarkSocket:
    """One ``lark_oapi.ws.Client`` running in its own thread and event loop.

    Args:
        app_id: App ID.
        app_secret: App Secret (plain string, only handed to lark-oapi).
        domain: ``https://open.feishu.cn`` or ``https://open.larksuite.com``.
        on_event: see :func:`bridge`.
    """

    def __init__(self, app_id: str, app_secret: str, domain: str, on_event: OnEvent) -> None:
        self._args = (app_id, app_secret, domain)
        self._on_event = on_event
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        """Connect and serve until :meth:`stop` (blocking; call in a thread).

        lark-oapi reconnects by itself once connected; an error raised here (bad
        credentials, first connect failing) ends the run and the caller backs off.
        """
        import lark_oapi as lark
        from lark_oapi.ws import client as ws_client

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        ws_client.loop = loop  # lark-oapi schedules every task on this module-level loop
        app_id, app_secret, domain = self._args
        client = lark.ws.Client(app_id, app_secret, domain=domain,
                                event_handler=build_event_handler(self._on_event),
                                log_level=lark.LogLevel.WARNING)
        try:
            client.start()
        except RuntimeError:
            if not self._stopping.is_set():
                raise
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        """Stop the thread's loop (thread-safe)."""
        self._stopping.set()
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)
