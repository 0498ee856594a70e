"""Chat model factory: a registry of providers, never an if-chain.

Any OpenAI-compatible endpoint (DeepSeek, Qwen/DashScope, Moonshot, GLM, Ollama, vLLM,
llama.cpp server) works through the ``openai`` provider with its ``base_url``.
"""

from __future__ import annotations

from collections.abc import Callable

from langchain_core.language_models import BaseChatModel

from botcore.errors import ConfigError
from botcore.settings import LLMSettings

__all__ = ["PROVIDERS", "make_chat_model"]


def _openai(settings: LLMSettings) -> BaseChatModel:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        raise ConfigError("llm.provider", "langchain-openai installed: "
                          "pip install 'botcore[openai]'") from None
    key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
    return ChatOpenAI(model=settings.model, base_url=settings.base_url, api_key=key,
                      timeout=settings.timeout, max_retries=settings.max_retries,
                      temperature=settings.temperature, streaming=True)


PROVIDERS: dict[str, Callable[[LLMSettings], BaseChatModel]] = {"openai": _openai}


def make_chat_model(settings: LLMSettings) -> BaseChatModel | None:
    """The configured chat model, or None when ``llm.model`` is empty."""
    if not settings.model:
        return None
    try:
        factory = PROVIDERS[settings.provider]
    except KeyError:
        raise ConfigError("llm.provider", f"one of {sorted(PROVIDERS)}",
                          repr(settings.provider)) from None
    return factory(settings)
