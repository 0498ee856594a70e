"""Retrieval quality on a question set: hit@1, hit@5, MRR and latency per search mode.

A QA file is JSON lines::

    {"question": "退货要多久", "source": "faq.csv", "contains": "7 天", "lang": "zh"}

A passage answers a question when its source ends with ``source`` and its text contains
``contains`` (case-insensitive; empty matches any passage of that source).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from botcore.kb.errors import KnowledgeBaseError
from botcore.retrieval import Passage, Retriever

__all__ = ["EvalResult", "QAItem", "evaluate", "load_qa"]


class QAItem(BaseModel):
    """One question and where its answer lives."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    question: str
    source: str
    contains: str = ""
    lang: str = ""

    def answered_by(self, passage: Passage) -> bool:
        """Whether ``passage`` holds the expected answer."""
        return passage.source.endswith(self.source) and (
            self.contains.lower() in passage.text.lower()
        )


@dataclass(frozen=True)
class EvalResult:
    """Scores of one search mode over the question set."""

    mode: str
    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr: float
    p50_ms: float
    p99_ms: float
    misses: list[str] = field(default_factory=list)


def load_qa(path: Path) -> list[QAItem]:
    """Read a JSON-lines QA file.

    Raises:
        KnowledgeBaseError: unreadable file or a bad line (its number is given).
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise KnowledgeBaseError(f"{path}: cannot read ({exc.strerror or exc})") from None
    items: list[QAItem] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(QAItem.model_validate(json.loads(line)))
        except (json.JSONDecodeError, ValidationError) as exc:
            reason = str(exc).splitlines()[0]
            raise KnowledgeBaseError(f"{path}:{number}: {reason}") from None
    if not items:
        raise KnowledgeBaseError(f"{path}: no questions")
    return items


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _score(mode: str, retriever: Retriever, items: Sequence[QAItem], k: int) -> EvalResult:
    for item in items[:3]:  # warm-up: model, tokenizer, client, the engine's threads
        await retriever.retrieve(item.question, k=k)
    ranks: list[int | None] = []
    latencies: list[float] = []
    for item in items:
        start = time.perf_counter()
        passages = await retriever.retrieve(item.question, k=k)
        latencies.append((time.perf_counter() - start) * 1000)
        rank = next((n for n, p in enumerate(passages, 1) if item.answered_by(p)), None)
        ranks.append(rank)
    total = len(items)
    return EvalResult(
        mode=mode,
        questions=total,
        hit_at_1=sum(1 for r in ranks if r == 1) / total,
        hit_at_5=sum(1 for r in ranks if r is not None and r <= 5) / total,
        mrr=statistics.fmean(1 / r if r else 0.0 for r in ranks),
        p50_ms=_percentile(latencies, 0.5),
        p99_ms=_percentile(latencies, 0.99),
        misses=[i.question for i, r in zip(items, ranks, strict=True) if r is None],
    )


async def evaluate(
    retrievers: Mapping[str, Retriever], items: Sequence[QAItem], *, k: int = 5
) -> list[EvalResult]:
    """Score each retriever (e.g. ``{"dense": ..., "keyword": ..., "hybrid": ...}``).

    Args:
        retrievers: mode name → retriever over the same knowledge base.
        items: the questions.
        k: passages asked for per question (hit@5 needs k ≥ 5).

    Returns:
        One :class:`EvalResult` per retriever, in the mapping's order.
    """
    return [await _score(mode, r, items, k) for mode, r in retrievers.items()]
