"""The OpenAI API with real flows, turns that end without a reply, derived conversations,
CORS and hostile bodies; the official ``openai`` SDK against a real server and worker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from botcore.web.openai_turn import REWRITE_SEPARATOR
from flows.customer_service import HANDOFF_TEXT
from tests.openai.flow_bots import RAG_ANSWER

pytestmark = pytest.mark.integration

KEY = "sk-turns-0123456789"
SITE = "https://shop.example"
RAG_FINAL = f"{RAG_ANSWER.rstrip()}\n\n来源 / Sources:\n[1] shipping.md › Free shipping"


def _bot(app: str, **extra: Any) -> dict[str, Any]:
    return {"channel": "web", "app": app, "api_keys": [KEY], **extra}


CONFIG = {
    "bots": {
        "mem": _bot("tests.openai.memory_bot:app", allowed_origins=[SITE]),
        "rag": _bot("tests.openai.flow_bots:rag"),
        "agent": _bot("tests.openai.flow_bots:agent"),
        "polite": _bot("tests.openai.flow_bots:polite"),
        "cs": _bot("tests.flows.handoff_bot:app"),
    },
    "ingress": {"lease_ttl": 2.0, "schedule_ttl": 3.0, "sweep_interval": 0.2},
}


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": f"{text}"}]


def _streamed(client: openai.OpenAI, model: str, messages: list[Any]) -> tuple[str, Any]:
    chunks = list(client.chat.completions.create(model=model, stream=True, messages=messages))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return content, chunks[-1]


def _answer(client: openai.OpenAI, model: str, messages: list[Any]) -> Any:
    return client.chat.completions.create(model=model, messages=messages,
                                          user=uuid.uuid4().hex)


def test_rag_flow_answers_with_sources_and_citations(client: openai.OpenAI) -> None:
    question = [{"role": "user", "content": "Is shipping free?"}]
    result = _answer(client, "rag", question)
    message = result.choices[0].message
    assert message.content == RAG_FINAL
    citation = {"title": "shipping.md", "source": "shipping.md", "heading": "Free shipping"}
    assert message.model_extra["citations"] == [citation]
    content, last = _streamed(client, "rag", [
        *question, {"role": "assistant", "content": "x"},
        {"role": "user", "content": "Really free?"}])
    # The model's text ended in a newline the flow strips: the sources still arrive.
    assert content == RAG_FINAL
    assert last.choices[0].delta.model_extra["citations"] == [citation]


def test_agent_text_before_a_tool_call_is_followed_by_the_answer(
        client: openai.OpenAI) -> None:
    assert _answer(client, "agent", _user("weather in Paris?")).choices[0].message.content \
        == "It is sunny in Paris."
    content, _ = _streamed(client, "agent", _user(f"weather in Paris? {uuid.uuid4()}"))
    # The model streams slowly: the text before its tool call reached the client.
    assert content.startswith("Let me")
    assert content.endswith(REWRITE_SEPARATOR + "It is sunny in Paris.")


def test_a_prompt_plugin_rewrite_reaches_streaming_clients(client: openai.OpenAI) -> None:
    final = "Dear customer, the plain answer."
    assert _answer(client, "polite", _user("hi")).choices[0].message.content == final
    content, _ = _streamed(client, "polite", _user(f"hi {uuid.uuid4()}"))
    assert content.endswith(final)


@pytest.mark.parametrize(("text", "final"), [
    ("fail after partial words", "sorry, that failed"),
    ("rewrite the text", "final the text"),
    ("twice", "one\n\ntwo"),
])
def test_streaming_clients_end_with_the_final_text(client: openai.OpenAI, text: str,
                                                   final: str) -> None:
    assert _answer(client, "mem", _user(text)).choices[0].message.content == final
    content, last = _streamed(client, "mem", [
        {"role": "user", "content": uuid.uuid4().hex}, {"role": "assistant", "content": "x"},
        {"role": "user", "content": text}])
    assert content.endswith(final)
    assert last.choices[0].finish_reason == "stop"


def test_a_turn_without_a_reply_is_an_empty_200_at_once(client: openai.OpenAI,
                                                         base_url: str) -> None:
    started = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(model="mem",
                                                           messages=_user("silent please"))
    result = raw.parse()
    assert raw.http_response.status_code == 200
    assert raw.http_response.headers["x-botcore-status"] == "no_reply"
    assert result.choices[0].message.content == ""
    assert result.model_extra["botcore_status"] == "no_reply"
    content, last = _streamed(client, "mem", _user(f"silent {uuid.uuid4()}"))
    assert (content, last.choices[0].finish_reason) == ("", "stop")
    assert last.model_extra["botcore_status"] == "no_reply"
    assert time.monotonic() - started < 10  # not the 30 s answer timeout


def test_stateless_history_stays_in_one_conversation(client: openai.OpenAI) -> None:
    opening = {"role": "user", "content": f"conv start {uuid.uuid4()}"}
    system = {"role": "system", "content": "You are helpful."}
    first = client.chat.completions.create(model="mem", messages=[system, opening])
    said = first.choices[0].message.content
    assert said is not None
    assert said.startswith("conversation=")
    second = client.chat.completions.create(model="mem", messages=[
        system, opening, {"role": "assistant", "content": said},
        {"role": "user", "content": "conv again"}])
    assert second.choices[0].message.content == said
    other_system = client.chat.completions.create(model="mem", messages=[opening])
    assert other_system.choices[0].message.content != said


def test_a_stateless_client_reaches_the_human_agent(client: openai.OpenAI) -> None:
    history: list[Any] = [{"role": "user", "content": f"talk to a human {uuid.uuid4()}"}]
    first = client.chat.completions.create(model="cs", messages=history)
    assert first.choices[0].message.content == HANDOFF_TEXT
    history += [{"role": "assistant", "content": HANDOFF_TEXT},
                {"role": "user", "content": "hello? anyone?"}]
    relayed = client.chat.completions.create(model="cs", messages=history)
    assert relayed.choices[0].message.content == ""
    assert relayed.model_extra["botcore_status"] == "handoff"


def _post(base_url: str, content: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{base_url}/v1/chat/completions", content=content, timeout=20,
                      headers={"Authorization": f"Bearer {KEY}", **headers})


def test_deeply_nested_body_is_400_not_500(base_url: str) -> None:
    response = _post(base_url, b"[" * 5000)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "body"
    assert "nested too deeply" in response.json()["error"]["message"]


def test_oversized_chunked_body_is_413(base_url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "mem", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}]}'
    response = _post(base_url, chunks())
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def _preflight(base_url: str, origin: str, path: str = "chat/completions") -> httpx.Response:
    return httpx.options(f"{base_url}/v1/{path}", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os"})


def test_cors_preflight_allows_the_bots_origins_only(base_url: str) -> None:
    allowed = _preflight(base_url, SITE)
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SITE
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert _preflight(base_url, SITE, "models").status_code == 204
    refused = _preflight(base_url, "https://evil.example")
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers


def test_cors_on_requests_follows_the_models_origins(base_url: str) -> None:
    body = b'{"model": "mem", "messages": [{"role": "user", "content": "cors hi"}]}'
    ok = _post(base_url, body, Origin=SITE)
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == SITE
    # rag allows no other site: a browser on SITE may not use it
    other = _post(base_url, body.replace(b'"mem"', b'"rag"'), Origin=SITE)
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "origin_not_allowed"
    assert _post(base_url, body, Origin="https://evil.example").status_code == 403
    models = httpx.get(f"{base_url}/v1/models", headers={
        "Authorization": f"Bearer {KEY}", "Origin": SITE})
    assert models.status_code == 200
    assert models.headers["access-control-allow-origin"] == SITE
