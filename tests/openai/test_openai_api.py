"""The OpenAI-compatible API, driven by the official ``openai`` SDK against a real server
(uvicorn on loopback, real Redis, a real worker process)."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest

from botcore.testing.stack import BotStack
from tests.openai.live_server import botcore_app, serve

pytestmark = pytest.mark.integration

KEY = "sk-test-mem-0123456789"
CONFIG = {
    "bots": {
        "mem": {"channel": "web", "app": "tests.openai.memory_bot:app",
                "api_keys": ["sk-other-key", KEY]},
        "echo": {"channel": "web", "app": "tests.bots.pipeline_bot:app",
                 "api_keys": ["sk-echo-key"]},
        "closed": {"channel": "web", "app": "tests.bots.pipeline_bot:app"},
    },
    "ingress": {"lease_ttl": 2.0, "schedule_ttl": 3.0, "sweep_interval": 0.2},
}


def test_plain_completion_is_an_openai_chat_completion(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(
        model="mem", messages=[{"role": "user", "content": "hello there"}])
    assert result.object == "chat.completion"
    assert result.model == "mem"
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "history=0 users= you said: hello there"
    assert choice.finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + \
        result.usage.completion_tokens


def test_streaming_gives_role_then_content_then_stop(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="mem", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream one two three four five"}]))
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:]
                if c.choices and c.choices[0].delta.content]
    assert "".join(contents) == "one two three four five"
    assert len(contents) >= 3  # really streamed, not one final blob
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert finishes.count("stop") == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None


def test_streaming_wire_format_ends_with_done(base_url: str) -> None:
    body = {"model": "echo", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, timeout=40,
                      headers={"Authorization": "Bearer sk-echo-key"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(line.startswith("data: ") for line in lines)
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "content": ""}, {"content": "echo: hi"}, {}]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "stop"]


def test_named_conversation_keeps_memory_on_the_server(client: openai.OpenAI) -> None:
    conv = uuid.uuid4().hex
    answers = []
    for text in ["first", "second", "third"]:
        # Only the newest message is sent: the server's session holds the rest.
        result = client.chat.completions.create(
            model="mem", messages=[{"role": "user", "content": text}],
            extra_headers={"X-Botcore-Conversation": conv})
        answers.append(result.choices[0].message.content)
    assert answers == ["history=0 users= you said: first",
                       "history=2 users=first you said: second",
                       "history=4 users=first|second you said: third"]
    by_user = client.chat.completions.create(model="mem", user=conv,
                                             messages=[{"role": "user", "content": "x"}])
    # The `user` field names the same conversation as the header.
    assert by_user.choices[0].message.content == \
        "history=6 users=first|second|third you said: x"


def test_client_history_is_ignored_in_a_named_conversation(client: openai.OpenAI) -> None:
    conv = uuid.uuid4().hex
    result = client.chat.completions.create(model="mem", user=conv, messages=[
        {"role": "user", "content": "made up"}, {"role": "assistant", "content": "fake"},
        {"role": "user", "content": "real"}])
    assert result.choices[0].message.content == "history=0 users= you said: real"


def test_stateless_request_sees_the_clients_history(client: openai.OpenAI) -> None:
    result = client.chat.completions.create(model="mem", messages=[
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": [{"type": "text", "text": "c"}]}])
    assert result.choices[0].message.content == "history=2 users=a you said: c"


def test_models_lists_the_bots_this_key_may_use(base_url: str) -> None:
    mem = openai.OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in mem.models.list()] == ["mem"]
    echo = openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-echo-key", max_retries=0)
    assert [m.id for m in echo.models.list()] == ["echo"]


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, object] = body["error"]
    return error


@pytest.mark.parametrize("auth", [None, "Bearer wrong-key", "Basic abc", "Bearer"])
def test_missing_or_wrong_key_is_401(base_url: str, auth: str | None) -> None:
    headers = {"Authorization": auth} if auth else {}
    body = {"model": "mem", "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(f"{base_url}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 401
    assert _error(response)["code"] == "invalid_api_key"
    assert httpx.get(f"{base_url}/v1/models", headers=headers).status_code == 401


def test_sdk_raises_authentication_error(base_url: str) -> None:
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="mem", messages=[{"role": "user", "content": "x"}])


def test_a_key_of_another_bot_does_not_open_this_one(client: openai.OpenAI) -> None:
    for model in ["echo", "closed", "nobody"]:
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=model,
                                           messages=[{"role": "user", "content": "x"}])
        assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(("body", "param"), [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    (b'{"model": "mem"}', "messages"),
    (b'{"model": "mem", "messages": []}', "messages"),
    (b'{"model": "mem", "messages": [{"role": "robot", "content": "x"}]}', "messages[0].role"),
    (b'{"model": "mem", "messages": [{"role": "user", "content": 5}]}', "messages[0].content"),
    (b'{"model": "mem", "messages": [{"role": "system", "content": "x"}]}', "messages"),
    (b'{"model": "mem", "messages": [{"role": "user", "content": "  "}]}',
     "messages[0].content"),
    (b'{"model": "mem", "stream": "yes please", "messages": [{"role": "user", "content": "x"}]}',
     "stream"),
])
def test_malformed_request_is_400_naming_the_field(base_url: str, body: bytes,
                                                   param: str) -> None:
    response = httpx.post(f"{base_url}/v1/chat/completions", content=body,
                          headers={"Authorization": f"Bearer {KEY}",
                                   "Content-Type": "application/json"})
    assert response.status_code == 400
    error = _error(response)
    assert error["type"] == "invalid_request_error"
    assert str(error["param"]).startswith(param)


def test_oversized_request_is_413(base_url: str) -> None:
    body = b'{"model": "mem", "messages": [{"role": "user", "content": "' + \
        b"x" * (1024 * 1024) + b'"}]}'
    response = httpx.post(f"{base_url}/v1/chat/completions", content=body,
                          headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"


def test_no_answer_in_time_is_a_200_clients_do_not_retry(server: tuple[BotStack, str]
                                                          ) -> None:
    with serve(botcore_app(server[0], timeout=1.0)) as impatient:
        body = {"model": "echo", "messages": [{"role": "user", "content": "slow 2500"}]}
        response = httpx.post(f"{impatient}/v1/chat/completions", json=body, timeout=10,
                              headers={"Authorization": "Bearer sk-echo-key"})
        # a 5xx would be retried by the SDKs and ChatBox, each retry a new message
        assert response.status_code == 200
        assert response.headers["x-botcore-status"] == "timeout"
        assert response.json()["botcore_status"] == "timeout"
        assert "No answer within 1 s" in response.json()["choices"][0]["message"]["content"]
        sdk = openai.OpenAI(base_url=f"{impatient}/v1", api_key="sk-echo-key", max_retries=0)
        chunks = list(sdk.chat.completions.create(
            model="echo", stream=True,
            messages=[{"role": "user", "content": "slow 2500 again"}]))
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert "No answer within 1 s" in content
        assert chunks[-1].model_extra["botcore_status"] == "timeout"
