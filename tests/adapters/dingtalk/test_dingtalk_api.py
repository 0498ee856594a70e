"""Outbound: session webhook, OpenAPI with a shared token, AI cards, group robot, errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote_plus

import httpx
import pytest
from dingtalk_support import API_BASE, make_adapter
from fake_dingtalk import FakeDingTalk
from redis.asyncio import Redis

from adapters.dingtalk import DingTalkApiError, DingTalkGroupRobot
from adapters.dingtalk.errors import api_error
from botcore.errors import ChannelAuthError, ChannelRateLimited, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey, OutboundMessage, Segment

CONV = ConversationKey(channel="dingtalk", bot_id="b1", chat_id="cidGroup==")
WEBHOOK = f"{API_BASE}/robot/sendBySession?session=s1"


def outbound(*, group: bool, webhook_left_s: float | None, **kw) -> OutboundMessage:  # type: ignore[no-untyped-def]
    ctx = {"conversationId": "cidGroup==" if group else "cidPrivate==",
           "conversationType": "2" if group else "1", "senderStaffId": "staff001"}
    if webhook_left_s is not None:
        ctx |= {"sessionWebhook": WEBHOOK,
                "sessionWebhookExpiredTime": int((time.time() + webhook_left_s) * 1000)}
    return OutboundMessage(conversation=CONV, context=ctx, **kw)


async def test_reply_through_session_webhook(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    result = await adapter.send(outbound(group=True, webhook_left_s=3600, text="你好"))
    md = await adapter.send(outbound(group=True, webhook_left_s=3600, text="# 标题\n**b**",
                                     format="markdown"))
    assert result.extra["via"] == "sessionWebhook"
    assert md.parts == 1
    text_body, md_body = fake.bodies("/robot/sendBySession")
    assert text_body == {"msgtype": "text", "text": {"content": "你好"}}
    assert md_body["markdown"] == {"title": "标题", "text": "# 标题\n**b**"}
    assert fake.token_fetches == 0


async def test_expired_webhook_falls_back_to_openapi(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    # 60 s left is inside the safety margin: not used
    private = await adapter.send(outbound(group=False, webhook_left_s=60, text="hi"))
    group = await adapter.send(outbound(group=True, webhook_left_s=None, text="**x**",
                                        format="markdown"))
    (oto,) = fake.bodies("/v1.0/robot/oToMessages/batchSend")
    assert oto["userIds"] == ["staff001"]
    assert oto["robotCode"] == fake.app_key
    assert (oto["msgKey"], json.loads(oto["msgParam"])) == ("sampleText", {"content": "hi"})
    (grp,) = fake.bodies("/v1.0/robot/groupMessages/send")
    assert grp["openConversationId"] == "cidGroup=="
    assert grp["msgKey"] == "sampleMarkdown"
    assert json.loads(grp["msgParam"])["text"] == "**x**"
    assert private.message_id
    assert group.extra["via"] == "openapi"
    assert fake.token_fetches == 1  # one token, cached in Redis for both calls
    assert fake.bodies("/v1.0/oauth2/accessToken")[0] == {
        "appKey": fake.app_key, "appSecret": fake.app_secret}


async def test_images(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    image = (Segment(type="image", url="https://img.example/a.png"),)
    res = await adapter.send(outbound(group=True, webhook_left_s=None, text="see",
                                      attachments=image))
    assert res.parts == 2
    keys_sent = [b["msgKey"] for b in fake.bodies("/v1.0/robot/groupMessages/send")]
    assert keys_sent == ["sampleText", "sampleImageMsg"]
    assert json.loads(fake.bodies("/v1.0/robot/groupMessages/send")[1]["msgParam"]) == {
        "photoURL": "https://img.example/a.png"}
    await adapter.send(outbound(group=True, webhook_left_s=3600, attachments=image))
    assert fake.bodies("/robot/sendBySession")[0]["markdown"]["text"] == (
        "![image](https://img.example/a.png)")


async def test_revoked_token_is_refreshed_once(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake)
    await adapter.send(outbound(group=True, webhook_left_s=None, text="one"))
    fake.revoke_tokens()
    await adapter.send(outbound(group=True, webhook_left_s=None, text="two"))
    assert fake.token_fetches == 2
    assert len(fake.bodies("/v1.0/robot/groupMessages/send")) == 3  # 401, then the retry


async def test_throttled_openapi_is_retried(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk(throttle=1)
    adapter = make_adapter(redis, keys, fake)
    await adapter.send(outbound(group=False, webhook_left_s=None, text="x"))
    assert len(fake.bodies("/v1.0/robot/oToMessages/batchSend")) == 2


async def test_session_webhook_budget_is_shared_then_openapi(redis: Redis,
                                                           keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    for i in range(20):
        await make_adapter(redis, keys, fake).send(
            outbound(group=True, webhook_left_s=3600, text=str(i)))
    other_worker = make_adapter(redis, keys, fake)  # another process: same Redis bucket
    result = await other_worker.send(outbound(group=True, webhook_left_s=3600, text="21"))
    assert result.extra["via"] == "openapi"
    assert len(fake.bodies("/robot/sendBySession")) == 20
    assert len(fake.bodies("/v1.0/robot/groupMessages/send")) == 1


async def test_throttled_session_webhook_falls_back(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk(throttle=1)  # the webhook answers errcode 130101 (blocked 10 min)
    adapter = make_adapter(redis, keys, fake)
    result = await adapter.send(outbound(group=False, webhook_left_s=3600, text="x"))
    assert result.extra["via"] == "openapi"
    assert len(fake.bodies("/v1.0/robot/oToMessages/batchSend")) == 1


async def test_no_card_template_means_buffered(redis: Redis, keys: KeyBuilder) -> None:
    assert make_adapter(redis, keys).open_stream(outbound(group=True, webhook_left_s=1)) is None


async def test_ai_card_stream(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake, card_template_id="tpl.schema")
    msg = outbound(group=True, webhook_left_s=3600, idempotency_key="k1")
    stream = adapter.open_stream(msg)
    assert stream is not None
    clock = iter([0.0, 0.0, 0.1, 0.2, 0.7, 0.7, 9.0])
    stream._monotonic = lambda: next(clock)  # type: ignore[attr-defined]
    for text in ("你", "你好", "你好，", "你好，世界"):
        await stream.update(text)
    result = await stream.finish("你好，世界！")
    assert result.message_id == "k1"
    (deliver,) = fake.bodies("/v1.0/card/instances/createAndDeliver")
    assert deliver["cardTemplateId"] == "tpl.schema"
    assert deliver["outTrackId"] == "k1"
    assert deliver["openSpaceId"] == "dtv1.card//IM_GROUP.cidGroup=="
    assert deliver["imGroupOpenDeliverModel"] == {"robotCode": fake.app_key}
    pushes = fake.bodies("/v1.0/card/streaming")
    assert [p["content"] for p in pushes] == ["你", "你好，世界", "你好，世界！"]  # throttled
    assert [p["isFinalize"] for p in pushes] == [False, False, True]
    assert all(p["isFull"] and not p["isError"] and p["key"] == "content" for p in pushes)
    (done,) = fake.bodies("/v1.0/card/instances")
    assert done["cardData"]["cardParamMap"]["flowStatus"] == "3"


async def test_private_card_space(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    adapter = make_adapter(redis, keys, fake, card_template_id="tpl")
    stream = adapter.open_stream(outbound(group=False, webhook_left_s=None))
    assert stream is not None
    await stream.finish("done")
    (deliver,) = fake.bodies("/v1.0/card/instances/createAndDeliver")
    assert deliver["openSpaceId"] == "dtv1.card//IM_ROBOT.staff001"
    assert deliver["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT"}


async def test_group_robot_signs_and_sends(redis: Redis, keys: KeyBuilder) -> None:
    fake = FakeDingTalk()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.asgi()))
    url = f"{API_BASE}/robot/send"
    robot = DingTalkGroupRobot(http, "tok123", fake.robot_secret, redis=redis, keys=keys,
                               url=url)
    await robot.send_text("部署完成")
    await robot.send_markdown("报告", "## ok")
    first = fake.calls[0]
    assert first["query"]["access_token"] == "tok123"
    assert first["query"]["sign"]
    assert fake.calls[1]["body"]["markdown"] == {"title": "报告", "text": "## ok"}
    robot.clock = lambda: 1700000000.123
    mac = hmac.new(b"SECrobot", b"1700000000123\nSECrobot", hashlib.sha256).digest()
    assert robot.signed_url().endswith(
        f"&timestamp=1700000000123&sign={quote_plus(base64.b64encode(mac).decode())}")
    wrong = DingTalkGroupRobot(http, "tok123", "SECwrong", url=url)
    with pytest.raises(DingTalkApiError) as err:
        await wrong.send_text("x")
    assert err.value.errcode == 310000
    fake.throttle = 1
    with pytest.raises(ChannelRateLimited) as limited:
        await robot.send_text("x")
    assert limited.value.retry_after == 600.0


@pytest.mark.parametrize(("status", "body", "expected"), [
    (401, {"code": "InvalidAuthentication", "message": "bad"}, ChannelAuthError),
    (400, {"code": "InvalidAuthentication", "message": "bad"}, ChannelAuthError),
    (429, {"code": "x", "message": "slow"}, ChannelRateLimited),
    (403, {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "qps"},
     ChannelRateLimited),
    (200, {"errcode": 130101, "errmsg": "send too fast"}, ChannelRateLimited),
    (200, {"errcode": 40014, "errmsg": "invalid access_token"}, ChannelAuthError),
    (200, {"status": 1111, "punish": "deny"}, ChannelRateLimited),
    (502, None, ChannelUnavailable),
    (400, {"code": "MissingParameter", "message": "m"}, DingTalkApiError),
])
def test_error_classification(status: int, body: object, expected: type) -> None:
    error = api_error(status, body)
    assert isinstance(error, expected)
    assert api_error(200, {"errcode": 0, "errmsg": "ok"}) is None
