"""A small Bot API client on the shared ``httpx.AsyncClient``.

Every call is ``POST {api_base}/bot<token>/<method>`` with a JSON body; answers are parsed into
:class:`~adapters.telegram.models.ApiResponse` and errors mapped onto the core tree by their
``error_code`` and ``parameters`` (never the description, which "is subject to change"):

* 429 or ``parameters.retry_after`` → :class:`~botcore.errors.ChannelRateLimited`;
* ``parameters.migrate_to_chat_id`` → :class:`TelegramChatMigrated` (callers re-send once);
* 401/404 (refused token) → :class:`TelegramAuthError`, a configuration error;
* 5xx, network errors, non-JSON answers → :class:`~botcore.errors.ChannelUnavailable`;
* anything else → :class:`TelegramApiError` (content error, not retried).

Sends pass through limits shared by every worker through Redis
(https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this): token
buckets for ≈1 msg/s per chat and 30/s per bot, and an exact window (no burst on top) for
20/min per group; then :func:`~botcore.outbound.send_with_retry`. Stream previews
(``retry=False``) never wait for a limit: they raise ChannelRateLimited and are skipped.
The token is part of the URL, so no URL or ``httpx`` error text is ever put in an exception
message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from botcore.errors import ChannelRateLimited, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.outbound import RateLimiter, WindowLimiter, send_with_retry

from .errors import CHANNEL, TelegramApiError, TelegramAuthError, TelegramChatMigrated
from .models import (
    ApiResponse,
    EditMessageText,
    InlineKeyboardMarkup,
    ResponseParameters,
    SendMessage,
    SendMessageDraft,
)

__all__ = ["Limits", "TelegramClient", "with_migration"]

T = TypeVar("T")


async def with_migration(chat_id: int, call: Callable[[int], Awaitable[T]]) -> tuple[T, int]:
    """Run ``call(chat_id)``; if the group became a supergroup, run it once more with the
    new id. Returns the result and the chat id that worked."""
    try:
        return await call(chat_id), chat_id
    except TelegramChatMigrated as exc:
        return await call(exc.new_chat_id), exc.new_chat_id


@dataclass(frozen=True, slots=True)
class Limits:
    """Outbound limits shared through Redis: ``per_chat`` and ``per_bot`` are token buckets
    (tokens per second, burst); ``per_group`` is an exact window (at most N sends in any
    T seconds, for chats with negative ids)."""

    per_chat: tuple[float, float] = (1.0, 3.0)
    per_group: tuple[int, float] = (20, 60.0)
    per_bot: tuple[float, float] = (30.0, 30.0)


class TelegramClient:
    """Calls Bot API methods for one bot.

    Args:
        http: the shared client (tests pass one on an ``httpx.ASGITransport``).
        api_base: ``https://api.telegram.org`` or a local Bot API server / fake.
        token: the bot token (kept out of every message and log line).
        bot_id: botcore's id of the bot (named in configuration errors).
        redis: for the shared rate limits.
        keys: key builder.
        limits: the rates.
    """

    def __init__(self, http: httpx.AsyncClient, api_base: str, token: str, bot_id: str,
                 redis: Redis, keys: KeyBuilder, limits: Limits | None = None) -> None:
        self._http = http
        self._base = f"{api_base.rstrip('/')}/bot{token}"
        self._bot_id = bot_id
        self.limits = limits = limits or Limits()
        self._chat = RateLimiter(redis, keys, CHANNEL, rate=limits.per_chat[0],
                                 burst=limits.per_chat[1])
        self._group = WindowLimiter(redis, keys, CHANNEL, windows=(limits.per_group,))
        self._all = RateLimiter(redis, keys, CHANNEL, rate=limits.per_bot[0],
                                burst=limits.per_bot[1])

    # --- transport ------------------------------------------------------------------------

    async def call(self, method: str, payload: BaseModel | dict[str, Any] | None = None, *,
                   timeout: float = 30.0) -> Any:
        """Call ``method`` once and return its ``result``, or raise a mapped error."""
        if isinstance(payload, BaseModel):
            body = payload.model_dump(mode="json", exclude_none=True)
        else:
            body = {key: value for key, value in (payload or {}).items() if value is not None}
        try:
            response = await self._http.post(f"{self._base}/{method}", json=body,
                                             timeout=timeout)
        except httpx.HTTPError as exc:
            raise ChannelUnavailable(f"{method}: network error ({type(exc).__name__})",
                                     channel=CHANNEL) from None
        return self._result(method, response)

    def _result(self, method: str, response: httpx.Response) -> Any:
        status = response.status_code
        try:
            answer = ApiResponse.model_validate_json(response.content)
        except ValidationError:
            if status >= 500 or status == 429:
                raise ChannelUnavailable(f"{method}: HTTP {status}", channel=CHANNEL) from None
            raise TelegramApiError(status, f"HTTP {status}, not a Bot API answer",
                                   method=method) from None
        if answer.ok:
            return answer.result
        code = answer.error_code or status
        params = answer.parameters or ResponseParameters()
        if params.retry_after is not None or code == 429:
            raise ChannelRateLimited(params.retry_after or 1.0, channel=CHANNEL, errcode=code,
                                     errmsg=f"{method}: {answer.description}")
        if params.migrate_to_chat_id is not None:
            raise TelegramChatMigrated(params.migrate_to_chat_id, method=method)
        if code in (401, 404):
            raise TelegramAuthError(code, bot_id=self._bot_id, method=method)
        if code >= 500:
            raise ChannelUnavailable(f"{method}: error {code}", channel=CHANNEL)
        raise TelegramApiError(code, answer.description, method=method)

    async def request(self, method: str, payload: BaseModel | dict[str, Any] | None = None,
                      ) -> Any:
        """:meth:`call` with :func:`~botcore.outbound.send_with_retry` around it."""
        return await send_with_retry(lambda: self.call(method, payload))

    async def _paced(self, chat_id: int, method: str, payload: BaseModel | dict[str, Any],
                     *, retry: bool = True) -> Any:
        wait = 60.0 if retry else 0.0  # previews skip rather than wait

        async def once() -> Any:
            await self._all.acquire(f"bot:{self._bot_id}", max_wait=wait)
            await self._chat.acquire(f"chat:{self._bot_id}:{chat_id}", max_wait=wait)
            if chat_id < 0:  # groups, supergroups and channels have negative ids
                await self._group.acquire(f"group:{self._bot_id}:{chat_id}", max_wait=wait)
            return await self.call(method, payload)

        return await send_with_retry(once) if retry else await once()

    # --- sending --------------------------------------------------------------------------

    async def send_message(self, request: SendMessage, *, retry: bool = True) -> dict[str, Any]:
        """``sendMessage``; returns the sent Message object. ``retry=False`` for stream
        previews, which must not block on a 429."""
        result: dict[str, Any] = await self._paced(request.chat_id, "sendMessage", request,
                                                   retry=retry)
        return result

    async def edit_message_text(self, request: EditMessageText, *, retry: bool = True) -> None:
        """``editMessageText``; "message is not modified" counts as success (the text shown
        is already the one asked for; that error has no ``parameters`` to branch on)."""
        try:
            await self._paced(request.chat_id, "editMessageText", request, retry=retry)
        except TelegramApiError as exc:
            if exc.errcode != 400 or "not modified" not in exc.errmsg:
                raise

    async def delete_message(self, chat_id: int, message_id: int) -> None:
        """``deleteMessage`` (a bot may delete its own messages for 48 hours)."""
        await self.request("deleteMessage", {"chat_id": chat_id, "message_id": message_id})

    async def send_message_draft(self, request: SendMessageDraft) -> None:
        """``sendMessageDraft``: one try, no retry (the next update supersedes it)."""
        await self._all.acquire(f"bot:{self._bot_id}")
        await self.call("sendMessageDraft", request)

    async def send_chat_action(self, chat_id: int, action: str = "typing",
                               message_thread_id: int | None = None) -> None:
        """``sendChatAction`` (shown ≤ 5 s or until the next message; repeat every 4-5 s)."""
        await self.call("sendChatAction", {"chat_id": chat_id, "action": action,
                                           "message_thread_id": message_thread_id})

    async def send_media(self, method: str, field: str, chat_id: int, ref: str, *,
                         caption: str | None = None, message_thread_id: int | None = None,
                         markup: InlineKeyboardMarkup | None = None) -> dict[str, Any]:
        """``sendPhoto`` / ``sendDocument`` by ``file_id`` or HTTPS URL."""
        payload: dict[str, Any] = {
            "chat_id": chat_id, field: ref, "caption": caption,
            "parse_mode": "HTML" if caption else None, "message_thread_id": message_thread_id,
            "reply_markup": markup.model_dump(mode="json", exclude_none=True) if markup else None,
        }
        result: dict[str, Any] = await self._paced(chat_id, method, payload)
        return result

    async def answer_callback_query(self, callback_query_id: str, text: str | None = None,
                                    show_alert: bool = False) -> None:
        """``answerCallbackQuery``: stops the button's loading spinner."""
        await self.call("answerCallbackQuery", {"callback_query_id": callback_query_id,
                                                "text": text, "show_alert": show_alert or None})

    # --- setup and polling ----------------------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        """``getMe``: the bot's own User."""
        result: dict[str, Any] = await self.request("getMe")
        return result

    async def set_webhook(self, url: str, secret_token: str,
                          allowed_updates: Sequence[str]) -> None:
        """``setWebhook`` with the secret header and the update types botcore handles."""
        await self.request("setWebhook", {"url": url, "secret_token": secret_token,
                                          "allowed_updates": list(allowed_updates)})

    async def delete_webhook(self) -> None:
        """``deleteWebhook`` (getUpdates fails while a webhook is set); keeps pending
        updates."""
        await self.request("deleteWebhook", {"drop_pending_updates": False})

    async def get_updates(self, offset: int | None, timeout: int,
                          allowed_updates: Sequence[str]) -> list[dict[str, Any]]:
        """``getUpdates`` long poll; ``offset`` confirms every update before it."""
        result: list[dict[str, Any]] = await self.call(
            "getUpdates",
            {"offset": offset, "timeout": timeout, "allowed_updates": list(allowed_updates)},
            timeout=timeout + 15.0,
        )
        return result
