"""Outbound through the fake WeCom server: tokens, message/send, media, errcodes, limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fake_wecom import AGENT_ID, ROBOT_KEY, SECRET, FakeWeCom
from redis.asyncio import Redis
from wecom_testkit import API_BASE, VEC_CORP, app_options

from adapters.wecom import WeComAdapter, WeComApiError, WeComClient, WeComGroupRobot
from adapters.wecom.errors import raise_for_errcode
from botcore.errors import ChannelAuthError, ChannelRateLimited, ChannelUnavailable
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey, OutboundMessage, Segment
from botcore.outbound import RateLimiter

Make = Callable[..., WeComAdapter]
CONV = ConversationKey(channel="wecom", bot_id="wc", chat_id="zhangsan")


def _client(http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, **kw: object) -> WeComClient:
    from pydantic import SecretStr

    return WeComClient(http, redis, keys, corp_id=VEC_CORP, agent_id=AGENT_ID,
                       secret=SecretStr(SECRET), api_base=API_BASE, **kw)  # type: ignore[arg-type]


async def test_send_text_reply(make_adapter: Make, fake: FakeWeCom) -> None:
    adapter = make_adapter(app_options())
    result = await adapter.send(OutboundMessage(conversation=CONV, text="你好",
                                                context={"mode": "app", "touser": "zhangsan"}))
    assert fake.gettoken_calls == 1
    (sent,) = fake.sent
    assert sent["touser"] == "zhangsan"
    assert sent["msgtype"] == "text"
    assert sent["text"] == {"content": "你好"}
    assert sent["agentid"] == AGENT_ID
    assert sent["enable_duplicate_check"] == 0
    assert result.message_id == sent["msgid"]


async def test_markdown_split_at_sentences_under_2048_bytes(make_adapter: Make,
                                                            fake: FakeWeCom) -> None:
    text = "这是一句很长的话。" * 200 + "end"  # 27 bytes per sentence, 5403 bytes in all
    adapter = make_adapter(app_options())
    result = await adapter.send(OutboundMessage(conversation=CONV, text=text, format="markdown"))
    parts = [m["markdown"]["content"] for m in fake.sent]
    assert result.parts == len(parts) == 3
    assert all(m["msgtype"] == "markdown" for m in fake.sent)
    assert all(len(p.encode()) <= 2048 for p in parts)
    assert all(p.endswith("。") for p in parts[:-1])
    assert "".join(parts) == text


async def test_image_upload_and_file_by_media_id(make_adapter: Make, fake: FakeWeCom) -> None:
    adapter = make_adapter(app_options())
    await adapter.send(OutboundMessage(conversation=CONV, attachments=(
        Segment(type="image", name="a.png", data={"content": b"\x89PNG..."}),)))
    (media_id,) = fake.media
    assert fake.media[media_id] == {"type": "image", "filename": "a.png", "size": 7}
    await adapter.send(OutboundMessage(conversation=CONV, attachments=(
        Segment(type="file", file_id=media_id),)))
    assert [(m["msgtype"], m[m["msgtype"]]) for m in fake.sent] == [
        ("image", {"media_id": media_id}), ("file", {"media_id": media_id})]


async def test_token_fetched_once_across_concurrent_workers(
        http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, fake: FakeWeCom) -> None:
    workers = [_client(http, redis, keys) for _ in range(8)]
    await asyncio.gather(*(w.send_text(f"user{i}", "hi") for i, w in enumerate(workers)))
    assert fake.gettoken_calls == 1
    assert len(fake.sent) == 8


async def test_token_expiry_mid_run_refreshes_once(
        http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, fake: FakeWeCom) -> None:
    client = _client(http, redis, keys)
    await client.send_text("zhangsan", "one")
    fake.expire_tokens()
    await client.send_text("zhangsan", "two")  # 42001 → invalidate → gettoken → retry
    assert fake.gettoken_calls == 2
    assert [m["text"]["content"] for m in fake.sent] == ["one", "two"]


async def test_invalid_token_twice_gives_up(
        http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, fake: FakeWeCom) -> None:
    client = _client(http, redis, keys)
    fake.fail_next(40014, "invalid access_token")
    fake.fail_next(40014, "invalid access_token")
    with pytest.raises(ChannelAuthError):
        await client.send_text("zhangsan", "x")
    assert fake.sent == []


async def test_system_busy_is_retried(http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder,
                                      fake: FakeWeCom) -> None:
    fake.fail_next(-1, "system busy")
    await _client(http, redis, keys).send_text("zhangsan", "x")
    assert len(fake.sent) == 1


async def test_content_error_is_not_retried(http: httpx.AsyncClient, redis: Redis,
                                            keys: KeyBuilder, fake: FakeWeCom) -> None:
    fake.fail_next(81013, "user & party & tag all invalid")
    with pytest.raises(WeComApiError) as info:
        await _client(http, redis, keys).send_text("nobody", "x")
    assert info.value.errcode == 81013
    assert fake.sent == []


async def test_wrong_secret(http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder) -> None:
    from pydantic import SecretStr

    client = WeComClient(http, redis, keys, corp_id=VEC_CORP, agent_id=AGENT_ID,
                         secret=SecretStr("wrong"), api_base=API_BASE)
    with pytest.raises(WeComApiError) as info:
        await client.send_text("zhangsan", "x")
    assert info.value.errcode == 40001
    assert "wrong" not in str(info.value)


@pytest.mark.parametrize(("errcode", "error", "retry_after"), [
    (42001, ChannelAuthError, None), (40014, ChannelAuthError, None),
    (45009, ChannelRateLimited, 60.0), (45033, ChannelRateLimited, 1.0),
    (-1, ChannelUnavailable, None), (60020, WeComApiError, None),
])
def test_errcode_mapping(errcode: int, error: type[Exception], retry_after: float | None) -> None:
    with pytest.raises(error) as info:
        raise_for_errcode({"errcode": errcode, "errmsg": "m"})
    if retry_after is not None:
        assert isinstance(info.value, ChannelRateLimited)
        assert info.value.retry_after == retry_after
    raise_for_errcode({"errcode": 0, "errmsg": "ok"})  # no error


async def test_network_error_is_unavailable(redis: Redis, keys: KeyBuilder) -> None:
    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(boom)) as http:
        client = _client(http, redis, keys)
        with pytest.raises(ChannelUnavailable) as info:
            await client._fetch_token()
    assert SECRET not in str(info.value)


# ---- group robot ------------------------------------------------------------------------

async def test_group_robot_text_markdown_and_mentions(http: httpx.AsyncClient,
                                                      fake: FakeWeCom) -> None:
    robot = WeComGroupRobot(http, key=ROBOT_KEY, api_base=API_BASE)
    assert await robot.send_text("deploy done", mentioned_list=["wangqing", "@all"]) == 1
    assert await robot.send_markdown("段落。" * 1000) == 3  # 9000 bytes
    first = fake.robot_sent[0]
    assert first["text"] == {"content": "deploy done", "mentioned_list": ["wangqing", "@all"]}
    assert all(len(m["markdown"]["content"].encode()) <= 4096 for m in fake.robot_sent[1:])


async def test_group_robot_waits_after_20_a_minute(http: httpx.AsyncClient,
                                                   fake: FakeWeCom) -> None:
    now = [1000.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds
        fake.clock = lambda: now[0]

    fake.clock = lambda: now[0]
    robot = WeComGroupRobot(http, f"{API_BASE}/cgi-bin/webhook/send?key={ROBOT_KEY}",
                            clock=lambda: now[0], sleep=sleep)
    for _ in range(21):
        await robot.send_text("ping")
    assert waits == [60.0]
    assert len(fake.robot_sent) == 21


async def test_group_robot_shared_limiter_and_bad_key(
        http: httpx.AsyncClient, redis: Redis, keys: KeyBuilder, fake: FakeWeCom) -> None:
    limiter = RateLimiter(redis, keys, "wecom", rate=20 / 60, burst=20)
    robot = WeComGroupRobot(http, key=ROBOT_KEY, api_base=API_BASE, limiter=limiter)
    await robot.send_text("hi")
    assert await limiter.reserve(robot._scope, 19) == 0  # 1 + 19 = the minute's 20
    bad = WeComGroupRobot(http, key="nope", api_base=API_BASE)
    with pytest.raises(WeComApiError) as info:
        await bad.send_text("x")
    assert info.value.errcode == 93000
