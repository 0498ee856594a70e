"""Matchers: command parsing, regex/keyword extras, combinators, chat-type and event rules."""

from __future__ import annotations

import re

import pytest

from botcore import matchers as m
from botcore.matchers import CommandMatch
from botcore.testing import make_inbound


def _cmd(text: str, *names: str, **fields: object) -> CommandMatch | None:
    extras = m.command(*names)(make_inbound(text, **fields))
    return None if extras is None else extras["command"]


async def test_command_name_args_and_raw_args() -> None:
    found = _cmd("/order 123   express", "order")
    assert found == CommandMatch("order", ("123", "express"), "123   express")


async def test_command_accepts_the_full_width_slash() -> None:
    assert _cmd("／order 42", "order") == CommandMatch("order", ("42",), "42")


async def test_command_without_args() -> None:
    assert _cmd("/reset", "reset") == CommandMatch("reset", (), "")


async def test_command_is_case_insensitive_and_accepts_leading_slash_in_name() -> None:
    found = _cmd("/RESET now", "/Reset")
    assert found == CommandMatch("reset", ("now",), "now")


async def test_command_aliases() -> None:
    assert _cmd("/h", "help", "h") is not None
    assert _cmd("/help", "help", "h") is not None


@pytest.mark.parametrize("text", ["/resetx", "reset", " /other", "hello /reset", "/"])
async def test_command_non_matches(text: str) -> None:
    assert _cmd(text, "reset") is None


async def test_command_strips_surrounding_whitespace() -> None:
    assert _cmd("  /reset  ", "reset") == CommandMatch("reset", (), "")


async def test_command_addressed_to_us() -> None:
    found = _cmd("/start@MyBot go", "start", platform={"bot_username": "mybot"})
    assert found == CommandMatch("start", ("go",), "go")


async def test_command_addressed_to_another_bot_is_ignored() -> None:
    assert _cmd("/start@OtherBot go", "start", platform={"bot_username": "mybot"}) is None


async def test_command_with_suffix_when_username_unknown_is_accepted() -> None:
    assert _cmd("/start@SomeBot", "start") == CommandMatch("start", (), "")


async def test_command_ignores_events() -> None:
    msg = make_inbound("/reset", kind="event", event_type="card_action")
    assert m.command("reset")(msg) is None


async def test_regex_extras_hold_the_match() -> None:
    extras = m.regex(r"order (?P<no>\d+)")(make_inbound("my order 42 please"))
    assert extras is not None
    assert extras["match"]["no"] == "42"


async def test_regex_accepts_compiled_pattern_and_flags() -> None:
    assert m.regex("HELLO", re.IGNORECASE)(make_inbound("well hello")) is not None
    assert m.regex(re.compile("^x"))(make_inbound("yx")) is None


async def test_regex_ignores_events() -> None:
    assert m.regex(".*")(make_inbound("a", kind="event", event_type="x")) is None


async def test_keyword_case_insensitive_any_word() -> None:
    rule = m.keyword("Price", "价格")
    assert rule(make_inbound("what is the PRICE?")) == {"keyword": "price"}
    assert rule(make_inbound("这个价格多少")) == {"keyword": "价格"}
    assert rule(make_inbound("hello")) is None


async def test_and_merges_extras() -> None:
    rule = m.regex(r"(\d+)") & m.keyword("order")
    extras = rule(make_inbound("order 7"))
    assert extras is not None
    assert extras["keyword"] == "order"
    assert extras["match"][1] == "7"


async def test_and_fails_if_either_side_fails() -> None:
    rule = m.keyword("order") & m.group()
    assert rule(make_inbound("order", chat_type="private")) is None
    assert rule(make_inbound("order", chat_type="group")) == {"keyword": "order"}
    assert (m.group() & m.keyword("order"))(make_inbound("x", chat_type="group")) is None


async def test_or_takes_first_matching_side_extras() -> None:
    rule = m.keyword("a") | m.regex("b")
    assert rule(make_inbound("a b")) == {"keyword": "a"}
    extras = rule(make_inbound("only b"))
    assert extras is not None
    assert extras["match"].group(0) == "b"
    assert rule(make_inbound("nothing")) is None


async def test_invert() -> None:
    rule = ~m.keyword("spam")
    assert rule(make_inbound("spam here")) is None
    assert rule(make_inbound("ham")) == {}


async def test_combination_precedence_and_names() -> None:
    rule = m.keyword("price") & (m.private() | m.group()) & ~m.channel("telegram")
    assert rule(make_inbound("price", channel="web")) == {"keyword": "price"}
    assert rule(make_inbound("price", channel="telegram")) is None
    assert "keyword(price)" in repr(rule)
    assert "~channel(telegram)" in rule.name


async def test_channel() -> None:
    rule = m.channel("wecom", "feishu")
    assert rule(make_inbound(channel="feishu")) == {}
    assert rule(make_inbound(channel="web")) is None


async def test_group_private() -> None:
    group_msg = make_inbound(chat_type="group")
    private_msg = make_inbound(chat_type="private")
    assert m.group()(group_msg) == {}
    assert m.group()(private_msg) is None
    assert m.private()(private_msg) == {}
    assert m.private()(group_msg) is None


async def test_mentioned() -> None:
    assert m.mentioned()(make_inbound(chat_type="private")) == {}  # private: always
    assert m.mentioned()(make_inbound(chat_type="group")) is None
    assert m.mentioned()(make_inbound(chat_type="group", mentioned=True)) == {}


async def test_event_types() -> None:
    joined = make_inbound("", kind="event", event_type="member_joined")
    assert m.event()(joined) == {"event": "member_joined"}
    assert m.event("member_joined", "x")(joined) == {"event": "member_joined"}
    assert m.event("card_action")(joined) is None
    assert m.event()(make_inbound("hi")) is None


async def test_all_of_and_always() -> None:
    assert m.all_of([])(make_inbound("x")) == {}
    assert m.always()(make_inbound("", kind="event", event_type="e")) == {}
    rule = m.all_of([m.keyword("a"), m.regex("(b)")])
    assert rule(make_inbound("b")) is None
    extras = rule(make_inbound("a b"))
    assert extras is not None
    assert set(extras) == {"keyword", "match"}
