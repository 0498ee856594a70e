"""What a ``/v1`` client is sent besides its own turn's replies: a human agent's messages
written between requests, and the answer of the turn its message was merged into (with
``ingress.merge_window``); the official ``openai`` SDK against a real server and worker."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from flows.customer_service import HANDOFF_TEXT

pytestmark = pytest.mark.integration

KEY = "sk-pending-0123456789"
AGENT_KEY = "agent-desk-secret"
CONFIG = {
    "bots": {
        "mem": {"channel": "web", "app": "tests.openai.memory_bot:app", "api_keys": [KEY]},
        "cs": {"channel": "web", "app": "tests.flows.handoff_bot:app", "api_keys": [KEY]},
    },
    "ingress": {"lease_ttl": 2.0, "schedule_ttl": 3.0, "sweep_interval": 0.2,
                "merge_window": 0.8},
    "handoff": {"api_key": AGENT_KEY},
}


def _streamed(client: openai.OpenAI, model: str, text: str, user: str) -> tuple[str, Any]:
    chunks = list(client.chat.completions.create(
        model=model, stream=True, user=user, messages=[{"role": "user", "content": text}]))
    contents = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    return "".join(contents), chunks


def _ask(client: openai.OpenAI, model: str, text: str, user: str) -> Any:
    return client.chat.completions.create(model=model, user=user,
                                          messages=[{"role": "user", "content": text}])


def _agent(base_url: str, path: str, **body: Any) -> httpx.Response:
    response = httpx.post(f"{base_url}/handoff/cs/{path}", json=body or None, timeout=20,
                          headers={"Authorization": f"Bearer {AGENT_KEY}"})
    response.raise_for_status()
    return response


def test_agent_replies_between_requests_come_with_the_next_answer_once(
        client: openai.OpenAI, base_url: str) -> None:
    user = f"customer-{uuid.uuid4().hex}"
    first = _ask(client, "cs", "talk to a human please", user)
    assert first.choices[0].message.content == HANDOFF_TEXT
    opened = httpx.get(f"{base_url}/handoff/cs", timeout=20,
                       headers={"Authorization": f"Bearer {AGENT_KEY}"}).json()
    (conversation,) = opened["conversations"]
    _agent(base_url, f"{conversation}/reply", text="Hi, I am Anna. Checking your order.")
    _agent(base_url, f"{conversation}/reply", text="It ships today.")

    second = _ask(client, "cs", "thank you!", user)
    assert second.choices[0].message.content == (
        "[agent] Hi, I am Anna. Checking your order.\n\n[agent] It ships today.")
    assert second.model_extra["botcore_status"] == "handoff"  # the new message was relayed

    _agent(base_url, f"{conversation}/reply", text="Anything else?")
    content, chunks = _streamed(client, "cs", "no, bye", user)
    # Streaming: the agent's message is the first content delta, after the role chunk.
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[1].choices[0].delta.content == "[agent] Anything else?"
    assert content == "[agent] Anything else?"
    assert chunks[-1].model_extra["botcore_status"] == "handoff"

    third = _ask(client, "cs", "hello again", user)
    assert third.choices[0].message.content == ""  # nothing is delivered twice
    assert third.model_extra["botcore_status"] == "handoff"


def test_agent_messages_stay_with_their_conversation(client: openai.OpenAI,
                                                    base_url: str) -> None:
    user = f"other-{uuid.uuid4().hex}"
    assert _ask(client, "mem", "hello", user).choices[0].message.content.endswith("hello")
    again = _ask(client, "mem", "hello twice", user)
    assert again.choices[0].message.content.startswith("history=2 ")
    assert "[agent]" not in again.choices[0].message.content


def _in_thread(results: dict[str, Any], name: str, call: Any) -> threading.Thread:
    def run() -> None:
        results[name] = call()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_requests_merged_into_one_turn_each_end_with_its_answer(
        client: openai.OpenAI) -> None:
    user = f"merge-{uuid.uuid4().hex}"
    results: dict[str, Any] = {}
    first = _in_thread(results, "first", lambda: _ask(client, "mem", "first line", user))
    time.sleep(0.3)  # within the merge window: one turn answers both lines
    second = _in_thread(results, "second",
                        lambda: _streamed(client, "mem", "second line", user))
    first.join(40)
    second.join(40)
    merged = "history=0 users= you said: first line\nsecond line"
    assert results["first"].choices[0].message.content == merged
    assert results["first"].model_extra["botcore_status"] == "answered"
    content, chunks = results["second"]
    assert content == merged
    assert chunks[-1].model_extra["botcore_status"] == "merged"

    results.clear()
    third = _in_thread(results, "third", lambda: _ask(client, "mem", "third line", user))
    time.sleep(0.3)
    fourth = _in_thread(results, "fourth", lambda: _ask(client, "mem", "fourth line", user))
    third.join(40)
    fourth.join(40)
    # Non-streaming too; the merged turn is one user entry in the history.
    answer = "history=2 users=first line\nsecond line you said: third line\nfourth line"
    assert results["third"].choices[0].message.content == answer
    assert results["fourth"].choices[0].message.content == answer
    assert results["fourth"].model_extra["botcore_status"] == "merged"


def test_a_message_with_its_own_turn_is_not_given_an_earlier_answer(
        client: openai.OpenAI) -> None:
    user = f"own-{uuid.uuid4().hex}"
    results: dict[str, Any] = {}
    words = "a b c d e f g h i j"  # streamed for about 1.2 s
    first = _in_thread(results, "first", lambda: _ask(client, "mem", f"stream {words}", user))
    time.sleep(1.2)  # the first turn has started: the next message gets a turn of its own
    silent = _ask(client, "mem", "silent now", user)
    first.join(40)
    assert results["first"].choices[0].message.content == words
    assert silent.choices[0].message.content == ""
    assert silent.model_extra["botcore_status"] == "no_reply"
