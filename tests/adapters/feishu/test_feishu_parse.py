"""Parsing im.message.receive_v1: message types, mentions, chats and threads."""

from __future__ import annotations

from typing import Any

import pytest
from feishu_helpers import BOT_OPEN_ID, MakeAdapter, message_event, signed

from botcore.channel import Accepted
from botcore.message import InboundMessage

# as Feishu sends them: bots have no user_id; people have one (with the user_id permission)
BOT = {"key": "@_user_1", "id": {"open_id": BOT_OPEN_ID, "union_id": "on_bot", "user_id": ""},
       "name": "Helper", "tenant_key": "tk"}
ALICE = {"key": "@_user_2", "id": {"open_id": "ou_alice", "union_id": "on_a", "user_id": "ua"},
         "name": "Alice", "tenant_key": "tk"}


async def parse(make_adapter: MakeAdapter, payload: dict[str, Any],
                **options: Any) -> InboundMessage:
    outcome = await make_adapter(**options).handle_webhook(signed(payload))
    assert isinstance(outcome, Accepted)
    (msg,) = outcome.messages
    return msg


async def test_group_mention_of_bot_by_open_id(make_adapter: MakeAdapter) -> None:
    msg = await parse(make_adapter, message_event(
        "@_user_1 ask @_user_2 please", chat_type="group", mentions=[BOT, ALICE]))
    assert msg.text == "ask @Alice please"
    assert (msg.mentioned, msg.chat_type) == (True, "group")
    assert [s.user_id for s in msg.segments if s.type == "mention"] == [BOT_OPEN_ID, "ou_alice"]


async def test_group_mention_of_someone_else(make_adapter: MakeAdapter) -> None:
    msg = await parse(make_adapter, message_event("@_user_2 hi", chat_type="group",
                                                  mentions=[ALICE]))
    assert (msg.text, msg.mentioned) == ("@Alice hi", False)


@pytest.mark.parametrize(("bot_name", "mentioned"), [("Helper", True), ("Other", False),
                                                     (None, True)])
async def test_group_mention_by_name_without_open_id(make_adapter: MakeAdapter,
                                                     bot_name: str | None,
                                                     mentioned: bool) -> None:
    msg = await parse(make_adapter, message_event("@_user_1 hi", chat_type="group",
                                                  mentions=[BOT]),
                      bot_open_id=None, bot_name=bot_name)
    assert msg.mentioned is mentioned
    assert msg.text == ("hi" if mentioned else "@Helper hi")


@pytest.mark.parametrize(("mention", "mentioned"), [
    (BOT, True),  # no user_id: not a person
    (ALICE, False),  # a person
    ({**ALICE, "mentioned_type": "bot"}, True),  # the type wins when Feishu sends it
    ({**BOT, "mentioned_type": "user"}, False),
])
async def test_mention_guess_without_bot_identity(make_adapter: MakeAdapter,
                                                  mention: dict[str, Any],
                                                  mentioned: bool) -> None:
    msg = await parse(make_adapter, message_event(f"{mention['key']} hi", chat_type="group",
                                                  mentions=[mention]), bot_open_id=None)
    assert msg.mentioned is mentioned


async def test_p2p_is_always_mentioned(make_adapter: MakeAdapter) -> None:
    msg = await parse(make_adapter, message_event("plain", chat_type="p2p"))
    assert (msg.mentioned, msg.chat_type, msg.sender.id) == (True, "private", "ou_user")
    assert msg.timestamp == pytest.approx(1700000000.123)


async def test_thread_and_root(make_adapter: MakeAdapter) -> None:
    msg = await parse(make_adapter, message_event("in topic", chat_type="group",
                                                  thread_id="omt_1", root_id="om_root",
                                                  parent_id="om_parent"))
    assert msg.conversation.thread_id == "omt_1"
    assert msg.conversation.chat_id == "oc_chat"
    assert msg.reply_to == "om_parent"
    assert (msg.platform["thread_id"], msg.platform["root_id"]) == ("omt_1", "om_root")


async def test_post_rich_text(make_adapter: MakeAdapter) -> None:
    content = {"title": "Report", "content": [
        [{"tag": "at", "user_id": "@_user_1", "user_name": "Helper"},
         {"tag": "text", "text": " see "}, {"tag": "a", "text": "docs", "href": "https://x"}],
        [{"tag": "img", "image_key": "img_1"}, {"tag": "text", "text": "done"}]]}
    msg = await parse(make_adapter, message_event(message_type="post", content=content,
                                                  chat_type="group", mentions=[BOT]))
    assert msg.text == "Report\nsee docs\ndone"
    assert msg.mentioned is True
    assert [s.file_id for s in msg.segments if s.type == "image"] == ["img_1"]


@pytest.mark.parametrize(("message_type", "content", "segment", "file_id"), [
    ("image", {"image_key": "img_k"}, "image", "img_k"),
    ("file", {"file_key": "file_k", "file_name": "a.pdf"}, "file", "file_k"),
    ("audio", {"file_key": "aud_k", "duration": 2000}, "voice", "aud_k"),
    ("media", {"file_key": "vid_k", "image_key": "img_c", "file_name": "v.mp4"}, "video",
     "vid_k"),
    ("sticker", {"file_key": "stk_k"}, "sticker", "stk_k"),
])
async def test_media_messages(make_adapter: MakeAdapter, message_type: str,
                              content: dict[str, Any], segment: str, file_id: str) -> None:
    msg = await parse(make_adapter, message_event(message_type=message_type, content=content))
    (seg,) = msg.segments
    assert (seg.type, seg.file_id, msg.text, msg.event_type) == (segment, file_id, "",
                                                                message_type)
    assert seg.data["message_id"] == "om_1"


async def test_interactive_and_unknown(make_adapter: MakeAdapter) -> None:
    card = {"title": "t", "elements": [[{"tag": "text", "text": "x"}]]}
    msg = await parse(make_adapter, message_event(message_type="interactive", content=card))
    assert msg.segments[0].type == "card"
    assert msg.segments[0].data == card
    other = await parse(make_adapter, message_event(message_type="share_chat",
                                                    content={"chat_id": "oc"},
                                                    event_id="ev-2"))
    assert other.segments[0].type == "unknown"


async def test_sender_app_is_bot(make_adapter: MakeAdapter) -> None:
    payload = message_event("from a bot")
    payload["event"]["sender"]["sender_type"] = "app"
    msg = await parse(make_adapter, payload)
    assert msg.sender.is_bot is True


def _chat_event(event_type: str, event: dict[str, Any], event_id: str) -> dict[str, Any]:
    envelope = message_event(event_id=event_id)
    envelope["header"]["event_type"] = event_type
    envelope["event"] = event
    return envelope


@pytest.mark.parametrize(("native", "common"), [
    ("im.chat.member.user.added_v1", "member_joined"),
    ("im.chat.member.user.deleted_v1", "member_left"),
    ("im.chat.member.bot.added_v1", "bot_added"),
])
async def test_chat_member_events_get_common_names(make_adapter: MakeAdapter, native: str,
                                                   common: str) -> None:
    event = {"chat_id": "oc_group", "operator_id": {"open_id": "ou_admin"}, "name": "客服群",
             "users": [{"name": "李四", "tenant_key": "tk", "user_id": {"open_id": "ou_lisi"}}]}
    msg = await parse(make_adapter, _chat_event(native, event, f"ev-{common}"))
    assert (msg.kind, msg.event_type, msg.chat_type) == ("event", common, "group")
    assert msg.event_data["native"] == native
    assert msg.conversation.chat_id == "oc_group"
    assert msg.sender.id == "ou_admin"
    assert msg.event_data["users"] == [{"open_id": "ou_lisi", "name": "李四"}]


async def test_p2p_chat_entered_is_enter_chat(make_adapter: MakeAdapter) -> None:
    event = {"chat_id": "oc_p2p", "operator_id": {"open_id": "ou_user"},
             "last_message_id": "om_9"}
    msg = await parse(make_adapter, _chat_event(
        "im.chat.access_event.bot_p2p_chat_entered_v1", event, "ev-enter"))
    assert (msg.event_type, msg.chat_type, msg.sender.id) == ("enter_chat", "private",
                                                              "ou_user")
