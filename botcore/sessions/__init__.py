"""Conversation sessions: history, variables and the per-conversation lease.

Sessions are keyed by :class:`~botcore.message.ConversationKey` (the one key type), every
write refreshes the TTL, and history is trimmed by turns and by a token budget.
Implementations: :class:`~botcore.sessions.redis.RedisSessionStore` (production and the
embedded mode) and :class:`~botcore.sessions.memory.InMemorySessionStore` (unit tests).
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from botcore.message import ConversationKey

__all__ = [
    "HistoryEntry",
    "Lease",
    "Session",
    "SessionStore",
    "estimate_tokens",
    "trim_history",
]


class HistoryEntry(BaseModel):
    """One line of conversation memory."""

    model_config = ConfigDict(frozen=True)

    role: Literal["user", "assistant", "system", "tool"]
    content: str
    ts: float = Field(default_factory=time.time)
    name: str | None = None


def estimate_tokens(text: str) -> int:
    """A cheap, tokenizer-free estimate: one token per CJK character, ~4 chars otherwise.

    Good enough to keep history inside a model's context budget without loading a
    tokenizer in every worker.
    """
    wide = sum(1 for ch in text if unicodedata.east_asian_width(ch) in "WF")
    return wide + (len(text) - wide + 3) // 4 + 1


def trim_history(entries: Sequence[HistoryEntry], max_turns: int,
                 max_tokens: int) -> list[HistoryEntry]:
    """Keep the newest entries within ``max_turns`` entries and ``max_tokens`` tokens."""
    kept: list[HistoryEntry] = []
    budget = max_tokens
    for entry in reversed(entries[-max_turns:]):
        cost = estimate_tokens(entry.content)
        if cost > budget:
            break
        budget -= cost
        kept.append(entry)
    if not kept and entries:  # the newest entry alone is over budget: keep its tail
        newest = entries[-1]
        kept.append(newest.model_copy(update={"content": newest.content[-max_tokens:]}))
    kept.reverse()
    return kept


@runtime_checkable
class Lease(Protocol):
    """Exclusive ownership of one conversation for a while, with a fencing token.

    Tokens only grow, so a holder whose lease expired (a paused or killed worker) can be
    told apart from the new holder: writes guarded by the token fail for the old one.
    """

    token: int

    async def renew(self) -> bool:
        """Extend the lease; False if it was lost (expired and taken by someone else)."""

    async def release(self) -> None:
        """Give the lease up if still held."""


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live. One contract suite (tests/contract) runs over every store."""

    async def history(self, key: ConversationKey) -> list[HistoryEntry]:
        """The kept history, oldest first."""

    async def append(self, key: ConversationKey, *entries: HistoryEntry) -> None:
        """Add entries, trim by turns and token budget, refresh the TTL."""

    async def get_vars(self, key: ConversationKey) -> dict[str, Any]:
        """All variables (JSON values)."""

    async def set_vars(self, key: ConversationKey, values: dict[str, Any]) -> None:
        """Set variables (JSON values); refresh the TTL."""

    async def delete_var(self, key: ConversationKey, name: str) -> None:
        """Remove one variable."""

    async def clear(self, key: ConversationKey) -> None:
        """Forget history and variables."""

    async def acquire_lease(self, key: ConversationKey, ttl: float) -> Lease | None:
        """Take the conversation's lease for ``ttl`` seconds, or None if someone holds it."""


class Session:
    """A store bound to one conversation: what handlers see as ``ctx.session``."""

    def __init__(self, store: SessionStore, key: ConversationKey) -> None:
        self.store = store
        self.key = key

    async def history(self) -> list[HistoryEntry]:
        """The kept history, oldest first."""
        return await self.store.history(self.key)

    async def append(self, *entries: HistoryEntry) -> None:
        """Add entries to the history."""
        await self.store.append(self.key, *entries)

    async def get(self, name: str, default: Any = None) -> Any:
        """One variable, or ``default``."""
        return (await self.store.get_vars(self.key)).get(name, default)

    async def set(self, name: str, value: Any) -> None:
        """Set one variable (any JSON value)."""
        await self.store.set_vars(self.key, {name: value})

    async def delete(self, name: str) -> None:
        """Remove one variable."""
        await self.store.delete_var(self.key, name)

    async def clear(self) -> None:
        """Forget history and variables."""
        await self.store.clear(self.key)
