"""Handoff notifications: a customer-service handoff through the flow runner posts once to
every ``[[handoff.notify]]`` target (a fake receiver over real HTTP), signed as the platforms
document; re-runs send nothing; a failing target is retried, then given up on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from structlog.testing import capture_logs

from botcore.app import BotApp
from botcore.context import TurnContext
from botcore.errors import ConfigError
from botcore.flowrun import GraphFlowRunner
from botcore.keys import KeyBuilder
from botcore.sessions import Session
from botcore.sessions.memory import InMemorySessionStore
from botcore.settings import BotConfig, Settings, load_settings
from botcore.testing import make_inbound
from botcore.testing.serve import serve_in_thread
from flows.customer_service import HANDOFF_TEXT
from tests.flows.conftest import FakeReplier, Harness, fake_model

CS = "flows.customer_service:build_cs_graph"
FEISHU_SECRET = "feishu-s3cret"
DING_SECRET = "SECding-s3cret"
ANSWERS = {"wecom": {"errcode": 0, "errmsg": "ok"}, "feishu": {"code": 0, "msg": "success"},
           "dingtalk": {"errcode": 0, "errmsg": "ok"}, "hook": {"ok": True}}


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A fake webhook receiver: records every request; ``/fail/...`` always answers 500."""
    seen: list[dict[str, Any]] = []

    async def record(request: Request) -> JSONResponse:
        kind = request.path_params["kind"]
        seen.append({"kind": kind, "query": dict(request.query_params),
                     "headers": dict(request.headers), "body": await request.body()})
        if kind == "fail":
            return JSONResponse({"error": "down"}, status_code=500)
        return JSONResponse(ANSWERS[kind])

    app = Starlette(routes=[Route("/{kind}/{rest:path}", record, methods=["POST"])])
    with serve_in_thread(app) as base:
        yield base, seen


def targets(base: str) -> list[dict[str, Any]]:
    return [
        {"url": f"{base}/wecom/cgi-bin/webhook/send?key=wecom-key", "format": "wecom_robot"},
        {"url": f"{base}/feishu/open-apis/bot/v2/hook/feishu-key", "format": "feishu_bot",
         "secret": FEISHU_SECRET},
        {"url": f"{base}/dingtalk/robot/send?access_token=ding-key",
         "format": "dingtalk_robot", "secret": DING_SECRET},
        {"url": f"{base}/hook/agents", "format": "json"}]


def make_harness(redis: Redis, notify: list[dict[str, Any]], **handoff: Any) -> Harness:
    app = BotApp("t")
    app.chat_model = fake_model()
    settings = Settings(handoff={"notify": notify, **handoff})
    runtime = SimpleNamespace(redis=redis, keys=KeyBuilder(prefix="t"), settings=settings,
                              apps={"bot": app})
    runner = GraphFlowRunner(runtime)  # type: ignore[arg-type]
    assert runner.desk.notifier is not None   # the worker's runner notifies by itself
    runner.desk.notifier.retry_wait = 0.01
    return Harness(runner, app, InMemorySessionStore(), FakeReplier())


async def run_turn(h: Harness, message: Any) -> str:
    ctx = TurnContext(message=message, session=Session(h.store, message.conversation),
                      bot=BotConfig(id="bot", channel="web", app="tests.x:app"), app=h.app,
                      replier=h.replier, flows=h.runner)
    return await h.runner.run(CS, ctx, {})


async def test_handoff_notifies_every_target_once_in_the_documented_shape(
        redis: Redis, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = receiver
    h = make_harness(redis, targets(base), agent_url="https://desk.example/{conversation_id}")
    message = make_inbound("我要转人工，订单 12345 一直没到 " + "很急" * 80, chat_id="c1",
                           sender="u-7")
    before = time.time()
    assert await run_turn(h, message) == HANDOFF_TEXT
    assert sorted(r["kind"] for r in seen) == ["dingtalk", "feishu", "hook", "wecom"]
    got = {r["kind"]: r for r in seen}

    wecom = json.loads(got["wecom"]["body"])
    assert got["wecom"]["query"] == {"key": "wecom-key"}
    assert wecom["msgtype"] == "markdown"
    assert "web:bot:c1" in wecom["markdown"]["content"]

    feishu = json.loads(got["feishu"]["body"])
    assert feishu["msg_type"] == "text"
    assert "web:bot:c1" in feishu["content"]["text"]
    stamp = int(feishu["timestamp"])
    assert before - 1 <= stamp <= time.time() + 1
    key = f"{stamp}\n{FEISHU_SECRET}".encode()
    assert feishu["sign"] == base64.b64encode(
        hmac.new(key, b"", hashlib.sha256).digest()).decode()

    ding_query = got["dingtalk"]["query"]
    assert ding_query["access_token"] == "ding-key"
    millis = int(ding_query["timestamp"])
    assert before * 1000 - 1000 <= millis <= time.time() * 1000 + 1000
    assert ding_query["sign"] == base64.b64encode(hmac.new(
        DING_SECRET.encode(), f"{millis}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()  # the query string carried it URL-encoded; Starlette decoded it
    ding = json.loads(got["dingtalk"]["body"])
    assert ding["msgtype"] == "markdown"
    assert ding["markdown"]["title"]
    assert "web:bot:c1" in ding["markdown"]["text"]

    event = json.loads(got["hook"]["body"])
    preview = event.pop("last_message")
    assert event == {"event": "handoff_opened", "bot_id": "bot",
                     "conversation_id": "web:bot:c1", "channel": "web", "reason": "handoff",
                     "user": {"id": "u-7", "name": "u-7"},
                     "agent_url": "https://desk.example/web%3Abot%3Ac1"}
    assert preview == message.text[:100] + "…"  # a 100-character preview by default
    assert "x-botcore-signature" not in got["hook"]["headers"]


async def test_a_rerun_turn_or_a_second_open_sends_nothing_again(
        redis: Redis, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = receiver
    h = make_harness(redis, targets(base)[3:])
    message = make_inbound("转人工", chat_id="c1")
    await run_turn(h, message)
    assert await run_turn(h, message) == ""  # the re-run: relayed to the agent, quiet
    await h.runner.desk.open(message, reason="handoff")  # a re-run reaching open() again
    assert len(seen) == 1
    # a later handoff of the same conversation (after release and resume) is a new one
    await h.runner.desk.release("web:bot:c1")
    await run_turn(h, make_inbound("好的", chat_id="c1"))
    await run_turn(h, make_inbound("再转人工", chat_id="c1"))
    assert len(seen) == 2


async def test_a_failing_target_is_retried_then_given_up_without_failing_the_turn(
        redis: Redis, receiver: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = receiver
    failing = {"url": f"{base}/fail/hook?key=do-not-log", "format": "json",
               "secret": "json-s3cret"}
    h = make_harness(redis, [failing, targets(base)[0]], notify_preview=0)
    with capture_logs() as logs:
        assert await run_turn(h, make_inbound("转人工 我的手机号 13800000000",
                                              chat_id="c1")) == HANDOFF_TEXT
    assert [r["kind"] for r in seen].count("fail") == 3
    assert [r["kind"] for r in seen].count("wecom") == 1
    assert await h.runner.desk.status("web:bot:c1") == "open"
    failed = [e for e in logs if e["event"] == "handoff notification not delivered"]
    assert len(failed) == 1
    assert failed[0]["host"] == "127.0.0.1"
    assert failed[0]["attempts"] == 3
    assert failed[0]["log_level"] == "warning"
    assert "do-not-log" not in repr(logs)
    assert "13800000000" not in repr(logs)
    # preview off: no message text leaves the worker; the json target was signed
    sent = seen[0]
    assert json.loads(sent["body"])["last_message"] is None
    stamp = sent["headers"]["x-botcore-timestamp"]
    assert sent["headers"]["x-botcore-signature"] == "sha256=" + hmac.new(
        b"json-s3cret", f"{stamp}.".encode() + sent["body"], hashlib.sha256).hexdigest()
    wecom = next(r for r in seen if r["kind"] == "wecom")
    assert "13800000000" not in wecom["body"].decode()


@pytest.mark.parametrize(("target", "field"), [
    ({"url": "https://h/x", "format": "slack"}, "handoff.notify.0.format"),
    ({"url": "https://h/x", "format": "wecom_robot", "secret": "s"}, "handoff.notify.0.secret"),
    ({"url": "h/x", "format": "json"}, "handoff.notify.0.url"),
    ({"url": "https://h/x", "format": "json", "sign": "s"}, "handoff.notify.0.sign"),
])
def test_settings_validate_targets(target: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, handoff={"notify": [target]})
    assert field in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_malformed_url_is_not_echoed() -> None:
    """A webhook URL carries its key (WeCom's ?key=..., DingTalk's access_token): a typo in
    it must not print the key back."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, handoff={"notify": [
            {"url": "htps//qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-secret-key",
             "format": "wecom_robot"}]})
    assert "handoff.notify.0.url" in str(caught.value)
    assert "wecom-secret-key" not in str(caught.value)


def test_settings_accept_the_documented_example() -> None:
    handoff = Settings(handoff={"notify": targets("https://example.test"),
                                "notify_preview": 0}).handoff
    assert [t.format for t in handoff.notify] == ["wecom_robot", "feishu_bot",
                                                  "dingtalk_robot", "json"]
    assert "feishu-key" not in repr(handoff)
    assert FEISHU_SECRET not in repr(handoff)
