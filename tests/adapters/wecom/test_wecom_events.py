"""Member changes get the common event names (member_joined / member_left) like the other
channels; the WeCom name stays in event_data["native"]."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from wecom_testkit import VEC_AES, VEC_CORP, VEC_TOKEN, app_options, signed_post

from adapters.wecom import WeComAdapter, WXBizMsgCrypt
from botcore.channel import Accepted
from botcore.message import EventType, InboundMessage

Make = Callable[..., WeComAdapter]
CRYPT = WXBizMsgCrypt(VEC_TOKEN, VEC_AES, VEC_CORP)
TS = "1409659813"


def _event(body: str) -> str:
    """A callback as WeCom sends contact and customer-group changes (from ``sys``)."""
    return (f"<xml><ToUserName><![CDATA[{VEC_CORP}]]></ToUserName>"
            f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{TS}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType>{body}<AgentID>1000002</AgentID></xml>")


async def _parse(adapter: WeComAdapter, xml: str) -> InboundMessage:
    outcome = await adapter.handle_webhook(signed_post(CRYPT, CRYPT.encrypt(xml), TS))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    return msg


@pytest.mark.parametrize(("change", "event_type"), [
    ("create_user", EventType.MEMBER_JOINED), ("delete_user", EventType.MEMBER_LEFT),
    ("update_user", "change_contact"),  # no common name: the native one
])
async def test_contact_changes(make_adapter: Make, change: str, event_type: str) -> None:
    msg = await _parse(make_adapter(app_options()), _event(
        f"<Event><![CDATA[change_contact]]></Event><ChangeType><![CDATA[{change}]]>"
        "</ChangeType><UserID><![CDATA[lisi]]></UserID>"))
    assert msg.kind == "event"
    assert msg.event_type == event_type
    assert msg.event_data["native"] == "change_contact"
    assert msg.event_data["ChangeType"] == change
    assert msg.conversation.chat_id == "lisi"  # the member, not "sys"
    assert msg.platform["touser"] == "lisi"
    assert msg.event_id == f"1000002:sys:{TS}:change_contact::{change}:lisi"


async def test_two_members_added_in_one_second_are_two_events(make_adapter: Make) -> None:
    adapter = make_adapter(app_options())
    ids = {(await _parse(adapter, _event(
        "<Event>change_contact</Event><ChangeType>create_user</ChangeType>"
        f"<UserID>{user}</UserID>"))).dedupe_key for user in ("lisi", "wangwu")}
    assert len(ids) == 2


@pytest.mark.parametrize(("detail", "event_type"), [
    ("add_member", EventType.MEMBER_JOINED), ("del_member", EventType.MEMBER_LEFT),
    ("change_name", "change_external_chat"),
])
async def test_customer_group_member_changes(make_adapter: Make, detail: str,
                                            event_type: str) -> None:
    msg = await _parse(make_adapter(app_options()), _event(
        "<Event><![CDATA[change_external_chat]]></Event><ChatId><![CDATA[wrOgQhDgAAMYQiS5o]]>"
        "</ChatId><ChangeType><![CDATA[update]]></ChangeType><UpdateDetail><![CDATA["
        f"{detail}]]></UpdateDetail><JoinScene>1</JoinScene><MemChangeCnt>1</MemChangeCnt>"))
    assert msg.event_type == event_type
    assert msg.event_data["native"] == "change_external_chat"
    assert msg.chat_type == "group"
    assert msg.conversation.chat_id == "wrOgQhDgAAMYQiS5o"
