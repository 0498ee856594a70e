"""A long answer split in parts reaches the member once: parts delivered by an earlier run
are skipped (DeliveryLedger), and a message/send whose answer was lost is not retried."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fake_wecom import FakeWeCom
from redis.asyncio import Redis
from wecom_testkit import app_options, bot

from adapters.wecom import WeComAdapter, WeComApiError
from adapters.wecom._text import split_utf8
from botcore.channel import AdapterDeps
from botcore.keys import KeyBuilder
from botcore.message import ConversationKey, OutboundMessage

CONV = ConversationKey(channel="wecom", bot_id="wc", chat_id="zhangsan")
#: ~680 Chinese characters exceed 2048 bytes: this answer needs four parts.
ANSWER = "".join(f"第{i}句话说的是退货的规则和细节，请仔细阅读。" for i in range(100))
PARTS = split_utf8(ANSWER, 2048)


class Network(httpx.AsyncBaseTransport):
    """The wire between the adapter and the fake WeCom, with faults on chosen sends:
    ``connect`` (refused before anything was written), ``502`` (a gateway error) and
    ``lost`` (WeCom handled the request, then the answer timed out)."""

    def __init__(self, fake: FakeWeCom) -> None:
        self.inner = httpx.ASGITransport(app=fake.app)
        self.faults: dict[int, str] = {}
        self.sends = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/cgi-bin/message/send":
            return await self.inner.handle_async_request(request)
        self.sends += 1
        fault = self.faults.pop(self.sends, None)
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault == "502":
            return httpx.Response(502, request=request)
        response = await self.inner.handle_async_request(request)
        if fault == "lost":
            await response.aread()
            raise httpx.ReadTimeout("timed out", request=request)
        return response


@pytest.fixture
def network(fake: FakeWeCom) -> Network:
    return Network(fake)


@pytest.fixture
async def adapter(network: Network, redis: Redis, keys: KeyBuilder,
                  ) -> AsyncIterator[WeComAdapter]:
    async with httpx.AsyncClient(transport=network, base_url="http://fake-wecom") as http:
        built = WeComAdapter(bot(app_options()), AdapterDeps(redis=redis, http=http, keys=keys))
        yield built


def _reply(text: str = ANSWER) -> OutboundMessage:
    return OutboundMessage(conversation=CONV, text=text, idempotency_key="turn1:0",
                           context={"mode": "app", "touser": "zhangsan"})


def _texts(fake: FakeWeCom) -> list[str]:
    return [m["text"]["content"] for m in fake.sent]


async def test_rerun_after_a_failed_part_sends_only_the_rest(adapter: WeComAdapter,
                                                             fake: FakeWeCom) -> None:
    fake.fail_send(2, 60020, "not allow to access from your ip")  # part 2 fails for good
    with pytest.raises(WeComApiError):
        await adapter.send(_reply())
    assert len(fake.sent) == 1
    result = await adapter.send(_reply())  # the turn is re-run with the same key
    assert _texts(fake) == PARTS  # part 1 was not sent again
    assert len(PARTS) == result.parts == 4
    assert result.message_id == fake.sent[-1]["msgid"]
    await adapter.send(_reply())  # a third run sends nothing
    assert len(fake.sent) == 4


async def test_a_lost_answer_is_not_retried(adapter: WeComAdapter, fake: FakeWeCom,
                                            network: Network) -> None:
    network.faults[2] = "lost"  # WeCom delivered part 2, the client never heard
    result = await adapter.send(_reply())
    assert network.sends == 4
    assert _texts(fake) == PARTS  # every part exactly once
    assert result.extra["msgids"][1] == ""
    await adapter.send(_reply())  # and the part counts as delivered for a re-run
    assert network.sends == 4


@pytest.mark.parametrize("fault", ["connect", "502"])
async def test_errors_before_wecom_took_the_message_are_retried(
        adapter: WeComAdapter, fake: FakeWeCom, network: Network, fault: str) -> None:
    network.faults[1] = fault
    await adapter.send(_reply(text="你好"))
    assert network.sends == 2
    assert _texts(fake) == ["你好"]


async def test_system_busy_on_a_part_is_retried(adapter: WeComAdapter, fake: FakeWeCom) -> None:
    fake.fail_send(2, -1, "system busy")
    await adapter.send(_reply())
    assert _texts(fake) == PARTS
