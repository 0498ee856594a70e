"""What a streaming OpenAI client is sent: it must end with the turn's final text."""

from __future__ import annotations

from botcore.web.openai_turn import REWRITE_SEPARATOR, AnswerEvent, ClientText


def _send(*events: AnswerEvent) -> tuple[str, ClientText]:
    text = ClientText()
    return "".join(text.feed(event) for event in events), text


def _delta(text: str, stream: str = "s1") -> AnswerEvent:
    return AnswerEvent("delta", text, stream)


def _final(text: str, stream: str = "s1") -> AnswerEvent:
    return AnswerEvent("message", text, stream)


def test_an_extending_stream_is_sent_as_is() -> None:
    sent, text = _send(_delta("Hel"), _delta("Hello"), _delta("Hello world"),
                       _final("Hello world!"))
    assert sent == "Hello world!"
    assert text.answer == "Hello world!"


def test_sources_after_stripped_whitespace_are_sent_exactly() -> None:
    # RAG: the model's text ends in a newline, the final text strips it and adds sources.
    final = "Free over 99 [1].\n\n来源 / Sources:\n[1] shipping.md"
    sent, _ = _send(_delta("Free"), _delta("Free over 99 [1]."), _delta("Free over 99 [1].\n"),
                    _final(final))
    assert sent == final


def test_a_rewritten_final_text_follows_a_rule() -> None:
    sent, text = _send(_delta("Let me look that up."),
                       _delta("Let me look that up.It is sunny."), _final("It is sunny."))
    assert sent == "Let me look that up.It is sunny." + REWRITE_SEPARATOR + "It is sunny."
    assert text.answer == "It is sunny."


def test_an_apology_after_a_partial_answer_is_sent() -> None:
    sent, text = _send(_delta("partial ans"), _final("sorry, that failed", stream=""))
    assert sent == "partial ans" + REWRITE_SEPARATOR + "sorry, that failed"
    assert text.answer == "sorry, that failed"


def test_a_re_run_starting_over_sends_nothing_twice() -> None:
    sent, _ = _send(_delta("one two"), _delta("one"), _delta("one two three"),
                    _final("one two three"))
    assert sent == "one two three"


def test_replies_of_one_turn_are_joined() -> None:
    sent, text = _send(_final("one", stream=""), _delta("tw", "s2"), _final("two", "s2"),
                       AnswerEvent("message", "three", citations=[{"title": "t"}]))
    assert sent == "one\n\ntwo\n\nthree"
    assert text.answer == "one\n\ntwo\n\nthree"
    assert text.citations == [{"title": "t"}]


def test_no_reply_sends_nothing() -> None:
    sent, text = _send()
    assert (sent, text.answer, text.replies) == ("", "", [])
