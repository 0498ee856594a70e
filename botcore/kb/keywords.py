"""Keyword side of hybrid search: BM25-style sparse vectors with Chinese word segmentation.

Text is cut with ``jieba`` in search mode (Chinese words and their sub-words; Latin words and
numbers pass through), lower-cased, stripped of punctuation and common stop words. Each token
maps to a stable 31-bit index (blake2b), so vectors need no vocabulary file.

* A stored chunk gets the BM25 term-frequency part, ``tf·(k1+1) / (tf + k1·(1-b+b·len/avg))``.
* A query gets 1.0 per distinct token.
* Qdrant multiplies by the IDF (``Modifier.IDF`` on the sparse vector), computed over the
  collection, so the dot product is the BM25 score.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import Counter
from typing import Any

from qdrant_client import models

__all__ = ["KeywordEncoder", "token_index"]

_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
_STOP = frozenset(
    [
        "a", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do",
        "does", "for", "from", "how", "i", "if", "in", "is", "it", "me", "my", "of", "on",
        "or", "our", "please", "should", "so", "that", "the", "this", "to", "was", "we",
        "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
        "your", "的", "了", "吗", "呢", "啊", "吧", "是", "我", "你", "我们", "你们",
        "他", "她", "它", "在", "和", "与", "或", "有", "没有", "怎么", "怎样", "如何",
        "什么", "哪些", "哪里", "哪个", "多少", "可以", "能", "能否", "需要", "要",
        "请问", "请", "一下", "这个", "那个", "这", "那", "就", "都", "也", "还", "会", "么",
    ]
)


def token_index(token: str) -> int:
    """A stable 31-bit index for a token (collisions are rare and only blur a score)."""
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


class KeywordEncoder:
    """Builds sparse vectors for chunks and queries.

    Args:
        k1: BM25 term-frequency saturation.
        b: BM25 length normalisation.
        avg_len: typical number of tokens in a chunk (the collection's average is unknown at
            ingest time; a fixed value keeps stored vectors independent of each other).
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75, avg_len: float = 60.0) -> None:
        self._k1 = k1
        self._b = b
        self._avg = avg_len
        self._jieba: Any = None
        self._lock = threading.Lock()

    def tokens(self, text: str) -> list[str]:
        """The searchable tokens of ``text``, in order, duplicates kept."""
        cut = self._tokenizer().lcut_for_search(text.lower())
        return [t for t in (w.strip() for w in cut) if t and _WORD.search(t) and t not in _STOP]

    def document(self, text: str) -> models.SparseVector:
        """The BM25 term-frequency vector of a stored chunk."""
        counts = Counter(self.tokens(text))
        length = sum(counts.values())
        norm = self._k1 * (1 - self._b + self._b * length / self._avg)
        weights: dict[int, float] = {}
        for token, tf in counts.items():
            index = token_index(token)
            weights[index] = weights.get(index, 0.0) + tf * (self._k1 + 1) / (tf + norm)
        return _sparse(weights)

    def query(self, text: str) -> models.SparseVector:
        """The query vector: 1.0 per distinct token (IDF is applied by Qdrant)."""
        return _sparse({token_index(t): 1.0 for t in set(self.tokens(text))})

    def _tokenizer(self) -> Any:
        # jieba builds its prefix dictionary (~0.4 s) on first use; build it once per encoder.
        with self._lock:
            if self._jieba is None:
                import jieba

                logging.getLogger("jieba").setLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                self._jieba = tokenizer
            return self._jieba


def _sparse(weights: dict[int, float]) -> models.SparseVector:
    indices = sorted(weights)
    return models.SparseVector(indices=indices, values=[weights[i] for i in indices])
