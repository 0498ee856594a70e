"""The official WeCom vectors (platforms.md 5.1, 5.2) and bad input through the real webhook
route (FastAPI app, real Redis): a good callback lands in the Redis inbox; bad input gets its
status and leaves nothing there."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fake_wecom import SECRET
from redis.asyncio import Redis
from wecom_testkit import (
    VEC_AES,
    VEC_BODY,
    VEC_CORP,
    VEC_ECHOSTR,
    VEC_POST_QUERY,
    VEC_TOKEN,
    app_xml,
    signed_post,
)

from adapters.wecom import WeComAdapter, WXBizMsgCrypt
from botcore.ingress.inbox import Envelope
from botcore.keys import KeyBuilder
from botcore.settings import load_settings
from botcore.web.app import create_app

KEYS = KeyBuilder(prefix="wecomroute")
BOT = {"channel": "wecom", "app": "examples.support_bot:app", "corp_id": VEC_CORP,
       "agent_id": 218, "secret": SECRET, "token": VEC_TOKEN, "encoding_aes_key": VEC_AES,
       "api_base": "http://127.0.0.1:9"}
GET_QUERY = {"msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
             "timestamp": "1409659589", "nonce": "263014780"}
CRYPT = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
OTHER = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, "wwothercorp")


class _Enqueuer:
    def __init__(self) -> None:
        self.scheduled: list[str] = []

    async def schedule(self, conversation_id: str) -> None:
        self.scheduled.append(conversation_id)


class Route:
    """The web app with its WeCom adapter's clock pinned (the vectors are from 2014)."""

    def __init__(self, client: httpx.AsyncClient, adapter: WeComAdapter,
                 enqueuer: _Enqueuer) -> None:
        self.client, self.adapter, self.enqueuer = client, adapter, enqueuer

    def at(self, now: float) -> Route:
        self.adapter.clock = lambda: now
        return self


@pytest.fixture
async def route(clean_redis: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Route]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOTCORE_CONFIG", raising=False)
    settings = load_settings(bots={"wc": BOT}, key_prefix=KEYS.prefix)
    enqueuer = _Enqueuer()
    app = create_app(settings, redis_url=clean_redis, enqueuer=enqueuer, listen=False)
    async with app.router.lifespan_context(app):
        adapter = app.state.runtime.adapters["wc"]
        assert isinstance(adapter, WeComAdapter)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://botcore") as client:
            yield Route(client, adapter, enqueuer)


async def _inbox(redis: Redis) -> list[Envelope]:
    keys = [key async for key in redis.scan_iter(match=f"{KEYS.prefix}:inbox:*")]
    return [Envelope.model_validate_json(item)
            for key in keys for item in await redis.lrange(key, 0, -1)]


def _wire(query: dict[str, str]) -> str:
    """The query string as WeCom sends it: every value percent-encoded (+ → %2B, / → %2F)."""
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


async def test_url_verification_vector_percent_encoded(route: Route, redis: Redis) -> None:
    query = _wire({**GET_QUERY, "echostr": VEC_ECHOSTR})
    assert {"%2B", "%2F", "%3D"} <= {query[i:i + 3] for i in range(len(query))}
    response = await route.at(1409659589).client.get(f"/webhooks/wecom/wc?{query}")
    assert response.status_code == 200
    assert response.content == b"1616140317555161061"  # bare: no quotes, no newline
    assert await _inbox(redis) == []


async def test_url_verification_with_a_raw_plus(route: Route) -> None:
    raw = "&".join(f"{k}={v}" for k, v in {**GET_QUERY, "echostr": VEC_ECHOSTR}.items())
    response = await route.at(1409659589).client.get(f"/webhooks/wecom/wc?{raw}")
    assert response.status_code == 200  # "+" read as a space by the parser is restored
    assert response.content == b"1616140317555161061"


async def test_message_vector_is_queued(route: Route, redis: Redis) -> None:
    response = await route.at(1409659813).client.post(
        f"/webhooks/wecom/wc?{_wire(VEC_POST_QUERY)}", content=VEC_BODY)
    assert response.status_code == 200
    assert response.content == b""
    (envelope,) = await _inbox(redis)
    msg = envelope.message
    assert (msg.text, msg.sender.id, msg.message_id) == ("hello", "mycreate",
                                                         "4561255354251345929")
    assert msg.conversation.id == "wecom:wc:mycreate"
    assert route.enqueuer.scheduled == ["wecom:wc:mycreate"]
    again = await route.client.post(f"/webhooks/wecom/wc?{_wire(VEC_POST_QUERY)}",
                                    content=VEC_BODY)
    assert again.status_code == 200  # WeCom's retry: acknowledged, stored once
    assert len(await _inbox(redis)) == 1


def _good(ts: str = "1409659813") -> tuple[dict[str, str], bytes]:
    xml = app_xml("text", "<Content>hi</Content>", agent=218)
    hook = signed_post(CRYPT, CRYPT.encrypt(xml), ts)
    return dict(hook.query), hook.body


def _bad_cases() -> list[tuple[str, str, dict[str, str], bytes, int]]:
    query, body = _good()
    foreign = signed_post(OTHER, OTHER.encrypt(app_xml("text", "<Content>x</Content>")),
                          "1409659813")
    garbage = signed_post(CRYPT, CRYPT.encrypt("<xml><a>"), "1409659813")
    not_b64 = signed_post(CRYPT, "!!not base64!!", "1409659813")
    stale_q, stale_b = _good(str(1409659813 - 3600))
    return [
        ("GET", "forged echostr signature",
         {**GET_QUERY, "msg_signature": "0" * 40, "echostr": VEC_ECHOSTR}, b"", 401),
        ("GET", "no echostr", GET_QUERY, b"", 400),
        ("POST", "forged signature", {**query, "msg_signature": "f" * 40}, body, 401),
        ("POST", "no signature", {k: v for k, v in query.items() if k != "msg_signature"},
         body, 401),
        ("POST", "stale timestamp", stale_q, stale_b, 401),
        ("POST", "body is not XML", query, b"{not xml", 400),
        ("POST", "no Encrypt", query, b"<xml><ToUserName>x</ToUserName></xml>", 400),
        ("POST", "entity expansion", query,
         b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>', 400),
        ("POST", "another corp's message", dict(foreign.query), foreign.body, 403),
        ("POST", "signed garbage inside", dict(garbage.query), garbage.body, 400),
        ("POST", "signed non-base64", dict(not_b64.query), not_b64.body, 400),
        ("POST", "over 1 MiB", query, b"<xml>" + b"a" * (1 << 20) + b"</xml>", 413),
    ]


@pytest.mark.parametrize(("method", "case", "query", "body", "status"), _bad_cases(),
                         ids=[case[1] for case in _bad_cases()])
async def test_bad_input_is_refused_and_nothing_is_queued(
        route: Route, redis: Redis, method: str, case: str, query: dict[str, str], body: bytes,
        status: int) -> None:
    now = 1409659589 if method == "GET" else 1409659813
    response = await route.at(now).client.request(
        method, f"/webhooks/wecom/wc?{_wire(query)}", content=body)
    assert response.status_code == status, case
    assert await _inbox(redis) == []
    assert route.enqueuer.scheduled == []
    assert "Encrypt" not in response.text  # never the body back


async def test_the_real_clock_refuses_the_2014_vector(route: Route, redis: Redis) -> None:
    route.adapter.clock = time.time
    response = await route.client.post(f"/webhooks/wecom/wc?{_wire(VEC_POST_QUERY)}",
                                       content=VEC_BODY)
    assert response.status_code == 401
    assert await _inbox(redis) == []
