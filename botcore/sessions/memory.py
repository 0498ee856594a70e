"""An in-process :class:`~botcore.sessions.SessionStore` for unit tests and experiments.

Not for production: it is lost on restart and not shared between processes.
"""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

from botcore.message import ConversationKey
from botcore.sessions import HistoryEntry, Lease, trim_history

__all__ = ["InMemorySessionStore"]


class _MemoryLease:
    def __init__(self, store: InMemorySessionStore, conv: str, token: int, ttl: float) -> None:
        self._store = store
        self._conv = conv
        self.token = token
        self._ttl = ttl

    async def renew(self) -> bool:
        holder = self._store._leases.get(self._conv)
        if holder is None or holder[0] != self.token or holder[1] < time.monotonic():
            return False
        self._store._leases[self._conv] = (self.token, time.monotonic() + self._ttl)
        return True

    async def release(self) -> None:
        holder = self._store._leases.get(self._conv)
        if holder is not None and holder[0] == self.token:
            del self._store._leases[self._conv]


class InMemorySessionStore:
    """Same behaviour as the Redis store, TTL included, in a dict."""

    def __init__(self, *, ttl: int = 7 * 86_400, max_turns: int = 20,
                 max_tokens: int = 4_000) -> None:
        self.ttl = ttl
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self._history: dict[str, tuple[float, list[HistoryEntry]]] = {}
        self._vars: dict[str, tuple[float, dict[str, Any]]] = {}
        self._leases: dict[str, tuple[int, float]] = {}
        self._tokens = itertools.count(1)

    def _live(self, table: dict[str, tuple[float, Any]], conv: str, empty: Any) -> Any:
        found = table.get(conv)
        if found is None or found[0] < time.monotonic():
            table.pop(conv, None)
            return empty
        return found[1]

    def _touch(self, conv: str) -> None:
        deadline = time.monotonic() + self.ttl
        if conv in self._history:
            self._history[conv] = (deadline, self._history[conv][1])
        if conv in self._vars:
            self._vars[conv] = (deadline, self._vars[conv][1])

    async def history(self, key: ConversationKey) -> list[HistoryEntry]:
        return list(self._live(self._history, key.id, []))

    async def append(self, key: ConversationKey, *entries: HistoryEntry) -> None:
        if not entries:
            return
        current = self._live(self._history, key.id, []) + list(entries)
        kept = trim_history(current, self.max_turns, self.max_tokens)
        self._history[key.id] = (0.0, kept)
        self._touch(key.id)

    async def get_vars(self, key: ConversationKey) -> dict[str, Any]:
        return copy.deepcopy(self._live(self._vars, key.id, {}))

    async def set_vars(self, key: ConversationKey, values: dict[str, Any]) -> None:
        if not values:
            return
        current = dict(self._live(self._vars, key.id, {}))
        current.update(copy.deepcopy(values))
        self._vars[key.id] = (0.0, current)
        self._touch(key.id)

    async def delete_var(self, key: ConversationKey, name: str) -> None:
        self._live(self._vars, key.id, {}).pop(name, None)

    async def clear(self, key: ConversationKey) -> None:
        self._history.pop(key.id, None)
        self._vars.pop(key.id, None)

    async def acquire_lease(self, key: ConversationKey, ttl: float) -> Lease | None:
        holder = self._leases.get(key.id)
        if holder is not None and holder[1] > time.monotonic():
            return None
        token = next(self._tokens)
        self._leases[key.id] = (token, time.monotonic() + ttl)
        return _MemoryLease(self, key.id, token, ttl)
