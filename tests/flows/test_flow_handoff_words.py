"""Handoff words: phrases that ask for a person, never words that merely contain them."""

from __future__ import annotations

from typing import Any

import pytest

from flows.customer_service import HANDOFF_TEXT, wants_human
from tests.flows.conftest import FakeRetriever, fake_model, passage

CS = "flows.customer_service:build_cs_graph"
KB = {"retriever": FakeRetriever([passage("人工智能客服 7x24 小时在线。")])}

ASKS = ["转人工", "我要人工客服", "人工", "人工！", "帮我找人工", "接人工服务", "客服",
        "I want to talk to a human", "Human please", "HUMAN AGENT!", "a real person, please",
        "live agent", "agent", "can I speak to humans?"]
MEANS_SOMETHING_ELSE = ["人工智能是什么", "人工成本怎么算", "你们用人工智能吗", "看过真人秀吗",
                        "what is humanity?", "that was inhumane", "humanoid robots",
                        "my travel agent booked it", "user-agent header", "agents of shield",
                        "the operator of this site"]


@pytest.mark.parametrize("text", ASKS)
def test_requests_for_a_person_are_recognised(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize("text", MEANS_SOMETHING_ELSE)
def test_words_that_contain_a_handoff_word_are_not_a_request(text: str) -> None:
    assert not wants_human(text)


def test_own_words_and_exclusions() -> None:
    assert wants_human("give me a supervisor", ["supervisor"], [])
    assert not wants_human("supervisors", ["supervisor"], [])
    assert not wants_human("我要人工湖", ["人工"], ["人工湖"])


async def test_ai_question_is_answered_not_handed_off(harness: Any) -> None:
    model = fake_model("faq", "我们的人工智能客服全天在线 [1]")
    h = harness(model)
    answer = await h.turn("你们有人工智能客服吗", CS, **KB)
    assert answer.startswith("我们的人工智能客服全天在线")
    assert await h.runner.desk.status("web:bot:c1") is None


async def test_chinese_request_hands_off_without_a_model_call(harness: Any) -> None:
    model = fake_model()
    h = harness(model)
    assert await h.turn("请帮我转人工客服", CS, **KB) == HANDOFF_TEXT
    assert await h.runner.desk.status("web:bot:c1") == "open"
    assert model.calls == []
