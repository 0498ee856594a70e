"""Updates → InboundMessage: texts, entities, group semantics, media, events."""

from __future__ import annotations

import json

import pytest
from conftest import webhook
from fake_telegram import BOT_USER
from tg_updates import (
    ALICE,
    FORUM,
    GROUP,
    OTHER_BOT,
    PRIVATE,
    bot_message,
    callback_query,
    entity,
    message,
    my_chat_member,
)

from adapters.telegram import TelegramAdapter
from botcore.channel import Accepted
from botcore.message import InboundMessage


async def parse(adapter: TelegramAdapter, update: dict[str, object]) -> tuple[InboundMessage, ...]:
    outcome = await adapter.handle_webhook(webhook(update))
    assert isinstance(outcome, Accepted)
    for msg in outcome.messages:  # platform and event_data must cross the queue as JSON
        json.dumps(msg.model_dump(mode="json"))
    return outcome.messages


async def one(adapter: TelegramAdapter, update: dict[str, object]) -> InboundMessage:
    messages = await parse(adapter, update)
    assert len(messages) == 1
    return messages[0]


async def test_private_text(adapter: TelegramAdapter) -> None:
    msg = await one(adapter, message("Hello <b>&", update_id=777, message_id=42))
    assert msg.channel == "telegram"
    assert msg.bot_id == "tg"
    assert msg.kind == "message"
    assert msg.event_id == "777"
    assert msg.message_id == "42"
    assert msg.chat_type == "private"
    assert msg.mentioned is True
    assert msg.text == "Hello <b>&"
    assert msg.sender.id == "1111"
    assert msg.sender.name == "Alice Liddell"
    assert msg.timestamp == 1_700_000_000
    assert msg.conversation.chat_id == "1111"
    assert msg.conversation.thread_id is None
    assert msg.platform == {"chat_id": 1111, "chat_type": "private",
                            "bot_username": "botcore_bot", "message_thread_id": None}
    assert msg.raw is not None
    assert msg.raw["message"]["from"]["language_code"] == "en"  # raw is the original JSON


async def test_group_message_without_address_is_not_mentioned(adapter: TelegramAdapter) -> None:
    msg = await one(adapter, message("just chatting", chat=GROUP))
    assert msg.chat_type == "group"
    assert msg.mentioned is False
    assert msg.conversation.chat_id == "-1001234567890"


async def test_group_command_for_us(adapter: TelegramAdapter) -> None:
    text = "/start@BotCore_Bot now please"
    msg = await one(adapter, message(text, chat=GROUP, entities=[entity("bot_command", 0, 18)]))
    assert msg.mentioned is True
    assert msg.text == "/start now please"


async def test_group_command_without_suffix_is_for_us(adapter: TelegramAdapter) -> None:
    msg = await one(adapter, message("/help", chat=GROUP, entities=[entity("bot_command", 0, 5)]))
    assert msg.mentioned is True
    assert msg.text == "/help"


async def test_command_for_another_bot_is_dropped(adapter: TelegramAdapter) -> None:
    update = message("/start@other_bot", chat=GROUP, entities=[entity("bot_command", 0, 16)])
    assert await parse(adapter, update) == ()


async def test_command_not_at_start_does_not_address(adapter: TelegramAdapter) -> None:
    update = message("see /help", chat=GROUP, entities=[entity("bot_command", 4, 5)])
    assert (await one(adapter, update)).mentioned is False


async def test_mention_after_emoji_is_removed(adapter: TelegramAdapter) -> None:
    # "👋🏽" is 4 UTF-16 code units: the entity offset counts them, not code points.
    text = "👋🏽 @botcore_bot what is 2+2? cc @alice"
    update = message(text, chat=GROUP, entities=[
        entity("mention", 5, 12), entity("mention", 34, 6)])
    msg = await one(adapter, update)
    assert msg.mentioned is True
    assert msg.text == "👋🏽 what is 2+2? cc @alice"
    mentions = [seg for seg in msg.segments if seg.type == "mention"]
    assert [seg.text for seg in mentions] == ["@alice"]


async def test_mention_of_another_user_only(adapter: TelegramAdapter) -> None:
    update = message("@alice hi", chat=GROUP, entities=[entity("mention", 0, 6)])
    msg = await one(adapter, update)
    assert msg.mentioned is False
    assert msg.text == "@alice hi"


async def test_text_mention_of_the_bot(adapter: TelegramAdapter) -> None:
    update = message("Botcore help", chat=GROUP,
                     entities=[entity("text_mention", 0, 7, user=BOT_USER)])
    msg = await one(adapter, update)
    assert msg.mentioned is True
    assert msg.text == "help"


async def test_reply_to_the_bot_addresses_it(adapter: TelegramAdapter) -> None:
    update = message("and then?", chat=GROUP, reply_to_message=bot_message("Once upon a time"))
    msg = await one(adapter, update)
    assert msg.mentioned is True
    assert msg.reply_to == "41"
    quote = next(seg for seg in msg.segments if seg.type == "quote")
    assert quote.text == "Once upon a time"
    assert quote.user_id == str(BOT_USER["id"])


async def test_reply_to_another_bot_does_not(adapter: TelegramAdapter) -> None:
    other = {**bot_message("hi"), "from": OTHER_BOT}
    msg = await one(adapter, message("ok", chat=GROUP, reply_to_message=other))
    assert msg.mentioned is False
    assert msg.reply_to == "41"


async def test_photo_uses_largest_size_and_caption(adapter: TelegramAdapter) -> None:
    photo = [
        {"file_id": "small", "file_unique_id": "a", "width": 90, "height": 60, "file_size": 1},
        {"file_id": "large", "file_unique_id": "c", "width": 1280, "height": 853},
        {"file_id": "medium", "file_unique_id": "b", "width": 320, "height": 213},
    ]
    update = message(None, chat=GROUP, photo=photo, caption="@botcore_bot what is this?",
                     caption_entities=[entity("mention", 0, 12)])
    msg = await one(adapter, update)
    images = [seg for seg in msg.segments if seg.type == "image"]
    assert [seg.file_id for seg in images] == ["large"]
    assert images[0].data["width"] == 1280
    assert msg.text == "what is this?"
    assert msg.mentioned is True


async def test_document_and_voice(adapter: TelegramAdapter) -> None:
    doc = {"file_id": "doc1", "file_unique_id": "d", "file_name": "report.pdf",
           "mime_type": "application/pdf", "file_size": 1234}
    msg = await one(adapter, message(None, document=doc, caption="summary please"))
    seg = next(seg for seg in msg.segments if seg.type == "file")
    assert (seg.file_id, seg.name, seg.mime_type) == ("doc1", "report.pdf", "application/pdf")
    assert msg.text == "summary please"

    voice = {"file_id": "v1", "file_unique_id": "v", "duration": 3, "mime_type": "audio/ogg"}
    msg = await one(adapter, message(None, voice=voice))
    seg = next(seg for seg in msg.segments if seg.type == "voice")
    assert (seg.file_id, seg.mime_type, seg.data["duration"]) == ("v1", "audio/ogg", 3)
    assert msg.text == ""


async def test_edited_message_is_an_event(adapter: TelegramAdapter) -> None:
    update = message("fixed typo", key="edited_message", edit_date=1_700_000_050)
    msg = await one(adapter, update)
    assert msg.kind == "event"
    assert msg.event_type == "edited_message"
    assert msg.text == "fixed typo"
    assert msg.timestamp == 1_700_000_050


async def test_callback_query(adapter: TelegramAdapter) -> None:
    msg = await one(adapter, callback_query("choice:2", update_id=21))
    assert msg.kind == "event"
    assert msg.event_type == "card_action"  # the common name: @app.event("card_action")
    assert msg.event_data["native"] == "callback_query"
    assert msg.event_id == "21"
    assert msg.event_data["data"] == "choice:2"
    assert msg.event_data["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert msg.platform["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert msg.conversation.chat_id == str(PRIVATE["id"])
    assert msg.sender.id == str(ALICE["id"])
    assert msg.mentioned is True


async def test_my_chat_member(adapter: TelegramAdapter) -> None:
    msg = await one(adapter, my_chat_member("left", "member"))
    assert (msg.kind, msg.event_type) == ("event", "bot_added")
    assert msg.event_data["native"] == "my_chat_member"
    removed = await one(adapter, my_chat_member("member", "kicked", update_id=99))
    assert removed.event_type == "bot_removed"
    assert msg.event_data["old_status"] == "left"
    assert msg.event_data["new_status"] == "member"
    assert msg.chat_type == "group"


async def test_forum_topic_thread(adapter: TelegramAdapter) -> None:
    update = message("/ask", chat=FORUM, message_thread_id=77, is_topic_message=True,
                     entities=[entity("bot_command", 0, 4)])
    msg = await one(adapter, update)
    assert msg.conversation.thread_id == "77"
    assert msg.platform["message_thread_id"] == 77
    assert msg.conversation.id == "telegram:tg:-1009876543210:t=77"


async def test_reply_thread_in_plain_supergroup_is_not_a_topic(adapter: TelegramAdapter) -> None:
    msg = await one(adapter, message("x", chat=GROUP, message_thread_id=5))
    assert msg.conversation.thread_id is None


@pytest.mark.parametrize("chat_type", ["group", "supergroup"])
async def test_group_kinds_map_to_group(adapter: TelegramAdapter, chat_type: str) -> None:
    msg = await one(adapter, message("x", chat={**GROUP, "type": chat_type}))
    assert msg.chat_type == "group"
    assert msg.platform["chat_type"] == chat_type


async def test_members_joining_and_leaving_are_common_events(adapter: TelegramAdapter) -> None:
    bob = {"id": 2222, "is_bot": False, "first_name": "Bob"}
    joined = await one(adapter, message(chat=GROUP, update_id=51, new_chat_members=[bob]))
    assert (joined.kind, joined.event_type) == ("event", "member_joined")
    assert joined.event_data["users"] == [{"id": "2222", "name": "Bob", "is_bot": False}]
    assert joined.event_data["native"] == "new_chat_members"
    assert joined.text == ""
    left = await one(adapter, message(chat=GROUP, update_id=52, left_chat_member=bob))
    assert (left.event_type, left.event_data["native"]) == ("member_left", "left_chat_member")
