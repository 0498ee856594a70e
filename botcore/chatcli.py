"""``botcore chat``: talk to a running botcore server's web chat bot from a terminal.

Lines typed are POSTed to ``/webhooks/web/{bot_id}`` (the same route the browser page uses);
replies are read from ``/chat/api/{bot_id}/events`` (Server-Sent Events) and printed. The
event stream resumes from the last event id after a dropped connection, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TextIO

import httpx

from botcore.webchat import KEY_HEADER

__all__ = ["main_chat", "run_terminal_chat"]

PROMPT = "you> "
#: After the first reply, wait for this much quiet before prompting (multi-part answers).
QUIET_SECONDS = 0.3
_POST_ATTEMPTS = 3


def _unreachable(url: str) -> str:
    return f"no botcore server at {url}: start one with `botcore serve`"


class _Printer:
    """Prints reply events: streamed deltas live on a terminal, each final message once."""

    def __init__(self, output: TextIO, label: str) -> None:
        self.output = output
        self.label = label
        self.live = bool(getattr(output, "isatty", lambda: False)())
        self.shown: dict[str, str] = {}
        self.finals = 0
        self.last_event = 0.0
        self.changed = asyncio.Event()

    def write(self, text: str) -> None:
        self.output.write(text)
        self.output.flush()

    def handle(self, event: dict[str, Any]) -> None:
        kind, sid, text = event.get("type"), event.get("stream_id") or "", event.get("text", "")
        if kind == "delta" and self.live and sid:
            self._delta(sid, text)
        elif kind == "message":
            self._final(sid, text, event.get("buttons") or [])
            self.finals += 1
        self.last_event = time.monotonic()
        self.changed.set()

    def _delta(self, sid: str, text: str) -> None:
        before = self.shown.get(sid)
        if before is None:
            self.write(f"{self.label}> {text}")
            self.shown[sid] = text
        elif text.startswith(before):
            self.write(text[len(before):])
            self.shown[sid] = text

    def _final(self, sid: str, text: str, buttons: list[Any]) -> None:
        before = self.shown.pop(sid, None)
        if before is not None and text.startswith(before):
            self.write(text[len(before):] + "\n")
        elif before is not None:
            self.write(f"\n{self.label}> {text}\n")
        else:
            self.write(f"{self.label}> {text}\n")
        labels = [str(pair[0]) for pair in buttons if isinstance(pair, list) and pair]
        if labels:
            self.write("  options: " + " | ".join(labels) + "\n")

    async def wait_reply(self, seen: int, timeout: float) -> None:
        """Until a final message beyond ``seen`` arrived and the stream is quiet, or timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            quiet = time.monotonic() - self.last_event >= QUIET_SECONDS
            if self.finals > seen and quiet and not self.shown:
                return
            self.changed.clear()
            wait = QUIET_SECONDS if self.finals > seen else deadline - time.monotonic()
            try:
                await asyncio.wait_for(self.changed.wait(), max(wait, 0.01))
            except TimeoutError:
                continue


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """(event id, data) pairs from the lines of an SSE response."""
    event_id = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event_id, "\n".join(data)
            event_id, data = "", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "data":
            data.append(value)


async def _follow(client: httpx.AsyncClient, bot_id: str, conversation_id: str,
                  printer: _Printer, connected: asyncio.Event) -> None:
    """Read the reply stream forever, reconnecting from the last event id."""
    last_id, delay = "", 0.5
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            async with client.stream(
                "GET", f"/chat/api/{bot_id}/events", params={"conversation_id": conversation_id},
                headers=headers, timeout=httpx.Timeout(10.0, read=60.0),
            ) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    printer.write(f"error: event stream: HTTP {resp.status_code} {resp.text}\n")
                    return
                connected.set()
                delay = 0.5
                async for event_id, data in _sse_events(resp.aiter_lines()):
                    last_id = event_id or last_id
                    try:
                        printer.handle(json.loads(data))
                    except ValueError:
                        continue
        except httpx.TransportError:
            pass
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def _post(client: httpx.AsyncClient, bot_id: str, payload: dict[str, str]) -> str | None:
    """POST one line (retrying the same client_msg_id on network errors); an error or None."""
    for attempt in range(_POST_ATTEMPTS):
        try:
            resp = await client.post(f"/webhooks/web/{bot_id}", json=payload)
        except httpx.TransportError:
            if attempt == _POST_ATTEMPTS - 1:
                return _unreachable(str(client.base_url))
            await asyncio.sleep(0.5 * 2**attempt)
            continue
        if resp.is_success:
            return None
        if resp.status_code < 500 or attempt == _POST_ATTEMPTS - 1:
            return f"not sent: HTTP {resp.status_code} {resp.text.strip()[:200]}"
        await asyncio.sleep(0.5 * 2**attempt)
    return None


async def _read_line(input_fn: Callable[[str], str], prompt: str) -> str | None:
    """Call the blocking ``input_fn`` in a daemon thread (so Ctrl-C never waits on it)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[str | None] = loop.create_future()

    def deliver(value: str | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def run() -> None:
        try:
            value: str | None = input_fn(prompt)
        except EOFError:
            value = None
        except BaseException as exc:  # re-raised in the event loop
            loop.call_soon_threadsafe(deliver, None, exc)
            return
        loop.call_soon_threadsafe(deliver, value, None)

    threading.Thread(target=run, name="botcore-chat-input", daemon=True).start()
    return await future


async def _check_bot(client: httpx.AsyncClient, url: str,
                     bot_id: str | None) -> tuple[str, str, str | None]:
    """(bot id, display name, error): the server may be down or not know the bot.

    ``bot_id`` None picks the server's first web chat bot.
    """
    try:
        resp = await client.get("/chat/api/bots")
    except httpx.TransportError:
        return "", "", _unreachable(url)
    if resp.status_code != 200:
        return "", "", f"{url} does not serve the web chat (GET /chat/api/bots: {resp.status_code})"
    bots = {str(b["id"]): str(b.get("name") or b["id"]) for b in resp.json()}
    if not bots:
        return "", "", f"no web chat bot at {url}: add one with channel = \"web\""
    bot_id = bot_id or next(iter(bots))
    if bot_id not in bots:
        return "", "", f"unknown bot {bot_id!r}; web chat bots at {url}: {', '.join(bots)}"
    return bot_id, bots[bot_id], None


async def run_terminal_chat(
    url: str, bot_id: str | None, conversation_id: str | None = None, key: str | None = None,
    input_fn: Callable[[str], str] = input, output: TextIO | None = None, *,
    user_id: str = "terminal", reply_timeout: float = 120.0,
) -> int:
    """Chat with a web bot of the botcore server at ``url`` until EOF, ``/quit`` or Ctrl-C.

    Args:
        url: the server's base URL, e.g. ``http://127.0.0.1:8000``.
        bot_id: a bot with ``channel = "web"``; None picks the server's first web bot.
        conversation_id: resume this conversation (its earlier replies are printed first);
            default a new one.
        key: the bot's ``access_key``, if it has one.
        input_fn: reads one line (``input``); raising EOFError ends the chat.
        output: where replies are printed (default stdout).
        user_id: the sender id the bot sees.
        reply_timeout: how long to wait for an answer before prompting again.

    Returns:
        The exit code: 0 after a normal end, 1 when the server or the bot is not there.
    """
    out = output or sys.stdout
    base = url.rstrip("/")
    conversation = conversation_id or uuid.uuid4().hex
    headers = {KEY_HEADER: key} if key else {}
    async with httpx.AsyncClient(base_url=base, headers=headers,
                                 timeout=httpx.Timeout(10.0)) as client:
        bot_id, name, error = await _check_bot(client, base, bot_id)
        if error:
            out.write(error + "\n")
            out.flush()
            return 1
        printer = _Printer(out, name)
        printer.write(f"chatting with {name} (conversation {conversation}); Ctrl-D to quit\n")
        connected = asyncio.Event()
        reader = asyncio.create_task(_follow(client, bot_id, conversation, printer, connected))
        ready = asyncio.create_task(connected.wait())
        try:
            done, _ = await asyncio.wait({ready, reader}, timeout=10.0,
                                         return_when=asyncio.FIRST_COMPLETED)
            if reader in done:  # the event stream refused us; _follow printed why
                return 1
            if not done:
                printer.write(_unreachable(base) + "\n")
                return 1
            await _loop(client, bot_id, conversation, user_id, printer, input_fn, reply_timeout)
        finally:
            for task in (ready, reader):
                task.cancel()
            await asyncio.gather(ready, reader, return_exceptions=True)
    return 0


async def _loop(client: httpx.AsyncClient, bot_id: str, conversation: str, user_id: str,
                printer: _Printer, input_fn: Callable[[str], str], reply_timeout: float) -> None:
    """Read, send, wait for the answer; until EOF or ``/quit``."""
    while True:
        line = await _read_line(input_fn, PROMPT)
        if line is None or line.strip() in {"/quit", "/exit"}:
            printer.write("bye\n")
            return
        text = line.strip()
        if not text:
            continue
        payload = {"conversation_id": conversation, "user_id": user_id, "text": text,
                   "client_msg_id": uuid.uuid4().hex}
        seen = printer.finals
        error = await _post(client, bot_id, payload)
        if error:
            printer.write(f"error: {error}\n")
            continue
        await printer.wait_reply(seen, reply_timeout)


def main_chat(url: str, bot: str | None, conversation_id: str | None = None,
              key: str | None = None) -> int:
    """The blocking entry point behind ``botcore chat``; returns the exit code.

    Example:
        >>> main_chat("http://127.0.0.1:8000", "demo")   # doctest: +SKIP
    """
    try:
        return asyncio.run(run_terminal_chat(url, bot, conversation_id, key))
    except KeyboardInterrupt:
        sys.stdout.write("\nbye\n")
        return 0
