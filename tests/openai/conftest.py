"""The running stack of a /v1 test module: each module sets ``CONFIG`` (botcore settings)
and ``KEY`` (the bearer key its client uses); these fixtures start one stack per module."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from botcore.testing.stack import BotStack
from tests.openai.live_server import running_stack


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, redis_url: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BotStack, str]]:
    name = request.module.__name__.rsplit(".", 1)[-1]
    with running_stack(redis_url, tmp_path_factory.mktemp(name), request.module.CONFIG
                       ) as running:
        yield running


@pytest.fixture(scope="module")
def base_url(server: tuple[BotStack, str]) -> str:
    return server[1]


@pytest.fixture
def client(request: pytest.FixtureRequest, base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=request.module.KEY, max_retries=0,
                         timeout=40)
