"""WeChat Customer Service (微信客服, "kf"): sync loop, message mapping and replies.

WeCom's kf callback (document 94670) carries no message: only ``Event=kf_msg_or_event``,
a ``Token`` (valid 10 minutes) and the ``OpenKfId`` that has news. The adapter's webhook
only records "sync needed" in Redis (:meth:`KfSync.notify`); the loop run by ``listen``
(:meth:`KfSync.run`) takes each note, pages through ``kf/sync_msg`` from the cursor kept per
``open_kfid``, hands every message from a WeChat user (``origin`` 3) and every
``enter_session`` event to ``ingest`` and stores ``next_cursor`` only once the page was
ingested: a crash re-reads the page and ingress drops the repeats (``event_id`` carries
the ``msgid``).

Replies go through ``kf/send_msg`` (document 94677: text ≤ 2048 bytes, at most 5 messages
within 48 hours of the user's last message); an answer to an ``enter_session`` event that
carries a ``welcome_code`` goes through ``kf/send_msg_on_event`` (one message, within
20 seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from redis.asyncio import Redis

from botcore.channel import IngestFn
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey, InboundMessage, OutboundMessage, Segment, Sender

from ._text import split_utf8
from .api import WeComClient
from .errors import CHANNEL, WeComApiError, WeComError

__all__ = [
    "KF_EVENT",
    "KF_TEXT_LIMIT",
    "KfSync",
    "build_kf_message",
    "kf_msgid",
    "send_kf",
]

log = logging.getLogger(__name__)

KF_EVENT = "kf_msg_or_event"
#: UTF-8 bytes of ``text.content`` in ``kf/send_msg`` and ``kf/send_msg_on_event``.
KF_TEXT_LIMIT = 2048
#: ``origin`` of a ``sync_msg`` item: 3 = the WeChat user, 4 = a system event, 5 = an agent.
ORIGIN_CUSTOMER, ORIGIN_SYSTEM, ORIGIN_SERVICER = 3, 4, 5
SYNC_LIMIT = 1000  # the default and the maximum of ``limit``
MAX_PAGES = 1000  # per note: a guard against a cursor that never advances
_MEDIA = ("image", "voice", "video", "file")
#: kf event_type → botcore's common event name.
_EVENTS = {"enter_session": "enter_chat"}


def kf_msgid(idempotency_key: str | None, index: int) -> str | None:
    """A ``msgid`` for part ``index`` of a reply: ≤ 32 bytes of ``[0-9a-f]``, stable for
    a re-run of the turn (WeCom refuses a msgid already used in the kf account)."""
    if not idempotency_key:
        return None
    return hashlib.sha256(f"{idempotency_key}\x00{index}".encode()).hexdigest()[:32]


def _content(item: dict[str, Any]) -> tuple[str, tuple[Segment, ...]]:
    kind = str(item.get("msgtype", ""))
    body = item.get(kind)
    part: dict[str, Any] = body if isinstance(body, dict) else {}
    if kind == "text":
        return str(part.get("content", "")), ()
    if kind in _MEDIA:
        return "", (Segment(type=kind, file_id=str(part.get("media_id") or "") or None),)
    if kind == "location":
        return "", (Segment(type="location", text=part.get("name") or None, data=part),)
    if kind == "link":
        return "", (Segment(type="link", url=part.get("url"), name=part.get("title"),
                            text=part.get("desc"), data=part),)
    return "", (Segment(type=kind or "unknown", data=part),)


def build_kf_message(bot_id: str, item: dict[str, Any]) -> InboundMessage | None:
    """One ``sync_msg`` item → an InboundMessage; None for what the bot does not answer
    (agents' messages, other events, items without the ids a reply needs)."""
    origin = item.get("origin")
    msgid = str(item.get("msgid") or "")
    raw_event = item.get("event")
    event: dict[str, Any] = raw_event if isinstance(raw_event, dict) else {}
    is_event = item.get("msgtype") == "event"
    native = str(event.get("event_type", "")) if is_event else ""
    if is_event and native not in _EVENTS:
        return None
    if not is_event and origin != ORIGIN_CUSTOMER:
        return None
    open_kfid = str(item.get("open_kfid") or event.get("open_kfid") or "")
    user = str(item.get("external_userid") or event.get("external_userid") or "")
    if not msgid or not open_kfid or not user:
        return None
    text, segments = ("", ()) if is_event else _content(item)
    platform: dict[str, Any] = {"mode": "kf", "open_kfid": open_kfid, "external_userid": user}
    if event.get("welcome_code"):
        platform["welcome_code"] = str(event["welcome_code"])
    return InboundMessage(
        channel=CHANNEL,
        bot_id=bot_id,
        conversation=ConversationKey(channel=CHANNEL, bot_id=bot_id,
                                     chat_id=f"kf:{open_kfid}:{user}"),
        event_id=f"kf:{open_kfid}:{msgid}",
        message_id=None if is_event else msgid,
        kind="event" if is_event else "message",
        event_type=_EVENTS[native] if is_event else None,
        chat_type="private",
        sender=Sender(id=user),
        text=text,
        segments=segments,
        mentioned=True,
        timestamp=float(item.get("send_time") or 0),
        event_data={**event, "native": native} if is_event else {},
        platform=platform,
        raw=item,
    )


class KfSync:
    """The notes left by the webhook and the ``sync_msg`` loop that works them off.

    Redis keys (all under ``KeyBuilder.channel_state("wecom", bot_id, ...)``):
    ``kf:notify`` (a list of JSON notes ``{open_kfid, token}``), ``kf:working`` (notes taken
    by a loop and not finished: put back when a loop starts) and ``kf:cursor`` (a hash
    ``open_kfid`` → the last stored ``next_cursor``).

    Attributes:
        block: whole seconds one ``BLMOVE`` waits for a note (well under the Redis read timeout).
    """

    def __init__(self, client: WeComClient, redis: Redis, keys: KeyBuilder,
                 bot_id: str) -> None:
        self._client = client
        self._redis = redis
        self._bot_id = bot_id
        self.notify_key = keys.channel_state(CHANNEL, bot_id, "kf:notify")
        self.working_key = keys.channel_state(CHANNEL, bot_id, "kf:working")
        self.cursor_key = keys.channel_state(CHANNEL, bot_id, "kf:cursor")
        self.block = 5

    async def notify(self, open_kfid: str, token: str) -> None:
        """Record that ``open_kfid`` has news (called by the webhook; Redis only)."""
        await self._redis.rpush(self.notify_key,
                                json.dumps({"open_kfid": open_kfid, "token": token}))

    async def cursor(self, open_kfid: str) -> str | None:
        """The stored cursor of ``open_kfid`` (None before the first sync)."""
        raw = await self._redis.hget(self.cursor_key, open_kfid)
        return raw.decode() if isinstance(raw, bytes) else raw

    async def run(self, ingest: IngestFn) -> None:
        """Work off notes until cancelled; an error propagates (the supervisor restarts
        the loop, which puts the unfinished note back first)."""
        while await self._redis.lmove(self.working_key, self.notify_key, "RIGHT", "LEFT"):
            pass  # notes a previous loop took and did not finish
        while True:
            raw = await self._redis.blmove(self.notify_key, self.working_key,
                                           max(1, self.block), "LEFT", "RIGHT")
            if raw is None:
                continue
            raw = raw.decode() if isinstance(raw, bytes) else str(raw)
            note = json.loads(raw)
            await self.sync(str(note.get("open_kfid", "")), str(note.get("token", "")), ingest)
            await self._redis.lrem(self.working_key, 1, raw)

    async def sync(self, open_kfid: str, token: str, ingest: IngestFn) -> int:
        """Read everything new for ``open_kfid``; returns how many messages were ingested."""
        if not open_kfid:
            return 0
        cursor = await self.cursor(open_kfid)
        ingested = 0
        for _ in range(MAX_PAGES):
            page = await self._page(open_kfid, cursor, token)
            for item in page.get("msg_list") or []:
                message = build_kf_message(self._bot_id, item) if isinstance(item, dict) \
                    else None
                if message is not None:
                    await ingest(message)
                    ingested += 1
            next_cursor = str(page.get("next_cursor") or "")
            if next_cursor:  # stored only now that the page was ingested
                await self._redis.hset(self.cursor_key, open_kfid, next_cursor)
            if not page.get("has_more") or not next_cursor or next_cursor == cursor:
                break
            cursor = next_cursor
        return ingested

    async def _page(self, open_kfid: str, cursor: str | None, token: str) -> dict[str, Any]:
        body: dict[str, Any] = {"limit": SYNC_LIMIT, "open_kfid": open_kfid}
        if cursor:
            body["cursor"] = cursor
        if token:
            body["token"] = token
        try:
            return await self._client.call("/cgi-bin/kf/sync_msg", json=body)
        except WeComApiError as exc:
            if not token:
                raise
            # the callback token lives 10 minutes: read without it (stricter rate limit)
            log.info("wecom kf sync_msg refused the callback token (%s); retrying without",
                     exc.errcode)
            return await self._client.call("/cgi-bin/kf/sync_msg",
                                           json={k: v for k, v in body.items() if k != "token"})


async def _send_msg(client: WeComClient, payload: dict[str, Any], path: str) -> str | None:
    data = await client.call(path, json=payload, idempotent=False)
    msgid = data.get("msgid")
    return str(msgid) if msgid else None


async def send_kf(client: WeComClient, message: OutboundMessage) -> list[str]:
    """Send ``message.text`` to a kf conversation; returns the msgids.

    Parts of ≤ 2048 bytes go through ``kf/send_msg`` (``touser`` = the external user,
    ``open_kfid`` = the kf account), each once per idempotency key (delivery ledger). A
    reply to an ``enter_session`` event that carries a ``welcome_code`` goes through
    ``kf/send_msg_on_event`` instead (one message: the first part only).

    Raises:
        WeComError: the context lacks the kf ids, or there are attachments.
    """
    ctx = message.context
    open_kfid, user = ctx.get("open_kfid"), ctx.get("external_userid")
    if not open_kfid or not user:
        raise WeComError("kf reply without open_kfid / external_userid in the context")
    if message.attachments:
        raise WeComError("kf replies carry text only")
    key = message.idempotency_key or None
    parts = split_utf8(message.text, KF_TEXT_LIMIT)
    code = ctx.get("welcome_code")
    if code:
        parts = parts[:1]
    ids: list[str] = []
    for index, part in enumerate(parts):
        payload: dict[str, Any] = {"msgtype": "text", "text": {"content": part}}
        msgid = kf_msgid(key, index)
        if msgid:
            payload["msgid"] = msgid
        if code:
            payload["code"] = str(code)
            path = "/cgi-bin/kf/send_msg_on_event"
        else:
            payload.update(touser=str(user), open_kfid=str(open_kfid))
            path = "/cgi-bin/kf/send_msg"

        async def deliver(payload: dict[str, Any] = payload, path: str = path) -> str | None:
            return await _send_msg(client, payload, path)
        ids.append(await client.send_part(key, index, deliver))
    return ids
