"""The chat router served by uvicorn: page, bot list, and the SSE reply stream (real Redis)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from botcore.message import OutboundMessage
from botcore.webchat import WebChatAdapter, web_conversation

CONV = web_conversation("demo", "c1")
EVENTS = "/chat/api/demo/events"


async def read_sse(lines: AsyncIterator[str], count: int,
                   timeout: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
    """The next ``count`` events as (id, data) from an SSE response's lines."""
    found: list[tuple[str, dict[str, Any]]] = []
    event_id, data = "", []

    async def collect() -> None:
        nonlocal event_id, data
        async for line in lines:
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                found.append((event_id, json.loads("\n".join(data))))
                event_id, data = "", []
                if len(found) == count:
                    return

    await asyncio.wait_for(collect(), timeout)
    return found


async def test_page_and_assets_are_served(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        page = await client.get("/chat", params={"bot": "demo"})
        js = await client.get("/chat/static/chat.js")
        css = await client.get("/chat/static/chat.css")
        other = await client.get("/chat/static/..%2Fchat.py")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for target in ('id="input"', 'id="send"', 'id="messages"', "/chat/static/chat.js"):
        assert target in page.text
    assert "//" not in page.text.replace("http-equiv", "")  # nothing from another host
    assert js.status_code == 200
    assert "renderMarkdown" in js.text
    assert css.status_code == 200
    assert other.status_code == 404


async def test_bot_list_has_only_web_bots(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        bots = (await client.get("/chat/api/bots")).json()
    assert bots == [{"id": "demo", "name": "Demo", "key_required": False},
                    {"id": "locked", "name": "locked", "key_required": True}]


@pytest.mark.parametrize("bot", ["nope", "tg"])
async def test_unknown_or_non_web_bot_is_404(server_url: str, bot: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        resp = await client.get(f"/chat/api/{bot}/events", params={"conversation_id": "c1"})
    assert resp.status_code == 404
    assert resp.json()["error"] == f"unknown bot '{bot}'"
    assert "demo" in resp.json()["hint"]


@pytest.mark.parametrize(("params", "headers"), [
    ({"conversation_id": "bad id!"}, {}),
    ({}, {}),
    ({"conversation_id": "c1", "last_id": "nonsense"}, {}),
    ({"conversation_id": "c1"}, {"Last-Event-ID": "1-2-3"}),
])
async def test_bad_parameters_are_400(server_url: str, params: dict[str, str],
                                      headers: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=server_url) as client:
        resp = await client.get(EVENTS, params=params, headers=headers)
    assert resp.status_code == 400
    assert "error" in resp.json()


async def test_key_is_required_on_the_event_stream(server_url: str, access_key: str) -> None:
    url = "/chat/api/locked/events"
    async with httpx.AsyncClient(base_url=server_url) as client:
        missing = await client.get(url, params={"conversation_id": "c1"})
        wrong = await client.get(url, params={"conversation_id": "c1"},
                                 headers={"X-Botcore-Key": "nope"})
        async with client.stream("GET", url, params={"conversation_id": "c1"},
                                 headers={"X-Botcore-Key": access_key}) as ok:
            status = ok.status_code
    assert missing.status_code == wrong.status_code == 401
    assert status == 200


async def test_events_replay_then_follow_live(server_url: str, writer: WebChatAdapter) -> None:
    first = await writer.send(OutboundMessage(conversation=CONV, text="one",
                                              buttons=(("Yes", "y"),)))
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as client,
        client.stream("GET", EVENTS, params={"conversation_id": "c1"}) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = resp.aiter_lines()
        (got_id, event), = await read_sse(lines, 1)
        assert got_id == first.message_id
        assert event["type"] == "message"
        assert event["text"] == "one"
        assert event["buttons"] == [["Yes", "y"]]

        stream = writer.open_stream(OutboundMessage(conversation=CONV, idempotency_key="s9"))
        assert stream is not None
        await stream.update("Hi")
        live = await read_sse(lines, 1)
        # Read the delta before finishing: finish() deletes the stream's deltas, so a reader
        # that comes late sees the final message only.
        done = await stream.finish("Hi there")
        live += await read_sse(lines, 1)
    assert [e[1]["type"] for e in live] == ["delta", "message"]
    assert live[0][1] == {"type": "delta", "stream_id": "s9", "text": "Hi", "format": "text"}
    assert live[1][0] == done.message_id
    assert live[1][1]["stream_id"] == "s9"
    assert live[1][1]["text"] == "Hi there"


@pytest.mark.parametrize("how", ["header", "query"])
async def test_reconnect_resumes_after_the_last_event_id(server_url: str,
                                                         writer: WebChatAdapter,
                                                         how: str) -> None:
    sent = [await writer.send(OutboundMessage(conversation=CONV, text=t)) for t in "abc"]
    resume = str(sent[0].message_id)
    params = {"conversation_id": "c1"}
    headers = {}
    if how == "header":
        headers["Last-Event-ID"] = resume
        params["last_id"] = "0-0"       # the header wins over the query
    else:
        params["last_id"] = resume
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as client,
        client.stream("GET", EVENTS, params=params, headers=headers) as resp,
    ):
        events = await read_sse(resp.aiter_lines(), 2)
    assert [e[0] for e in events] == [sent[1].message_id, sent[2].message_id]
    assert [e[1]["text"] for e in events] == ["b", "c"]


async def test_idle_stream_sends_keep_alive_comments(server_url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as client,
        client.stream("GET", EVENTS, params={"conversation_id": "idle"}) as resp,
    ):
        comments: list[str] = []

        async def until_keep_alive() -> None:
            async for line in resp.aiter_lines():
                if line.startswith(":"):
                    comments.append(line)
                    if "keep-alive" in line:
                        return

        await asyncio.wait_for(until_keep_alive(), 5)   # block_ms=300 in this app
    assert comments[0] == ": connected"
    assert comments[-1] == ": keep-alive"


async def test_idle_stream_outlives_a_long_block(slow_block_server_url: str,
                                                writer: WebChatAdapter) -> None:
    """An idle stream holds one XREAD for 6 s, then the reply arrives on the same
    connection (with redis-py's default 5 s read timeout the server raised TimeoutError
    and dropped the stream)."""
    async with (
        httpx.AsyncClient(base_url=slow_block_server_url, timeout=20) as client,
        client.stream("GET", EVENTS, params={"conversation_id": "c1"}) as resp,
    ):
        lines = resp.aiter_lines()
        seen: list[str] = []

        async def until(marker: str) -> None:
            async for line in lines:
                seen.append(line)
                if marker in line:
                    return

        await asyncio.wait_for(until("keep-alive"), 12)   # the first 6 s block ended idle
        sent = await writer.send(OutboundMessage(conversation=CONV, text="still here"))
        (got_id, event), = await read_sse(lines, 1, timeout=10)
    assert ": connected" in seen
    assert got_id == sent.message_id
    assert event["text"] == "still here"


async def test_conversations_do_not_see_each_other(server_url: str,
                                                   writer: WebChatAdapter) -> None:
    await writer.send(OutboundMessage(conversation=web_conversation("demo", "other"), text="x"))
    mine = await writer.send(OutboundMessage(conversation=CONV, text="mine"))
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as client,
        client.stream("GET", EVENTS, params={"conversation_id": "c1"}) as resp,
    ):
        (event_id, event), = await read_sse(resp.aiter_lines(), 1)
    assert (event_id, event["text"]) == (mine.message_id, "mine")


async def test_posted_message_is_answered_on_the_stream(server_url: str) -> None:
    body = {"conversation_id": "c2", "user_id": "u", "text": "ping", "client_msg_id": "m1"}
    async with (
        httpx.AsyncClient(base_url=server_url, timeout=10) as client,
        client.stream("GET", EVENTS, params={"conversation_id": "c2"}) as resp,
    ):
        ack = await client.post("/webhooks/web/demo", json=body)
        again = await client.post("/webhooks/web/demo", json=body)  # a retry: dropped
        lines = resp.aiter_lines()
        events = await read_sse(lines, 1)
        while events[-1][1]["type"] != "message":
            events += await read_sse(lines, 1)
        with pytest.raises(TimeoutError):  # the retried POST was not answered twice
            await read_sse(lines, 1, timeout=0.5)
        ack_body = ack.json()
    assert ack_body == {"ok": True, "conversation_id": "c2", "client_msg_id": "m1"}
    assert again.status_code == 200
    # Deltas are best effort (a slow reader may miss deleted ones); one final message.
    assert {e[1]["type"] for e in events[:-1]} <= {"delta"}
    assert events[-1][1]["text"] == "echo: ping"
    assert events[-1][1]["format"] == "markdown"
