"""Matchers decide which handler gets a message; they combine with ``&``, ``|`` and ``~``.

A matcher returns ``None`` (no match) or a dict of extras that the handler sees on its
context (``ctx.command``, ``ctx.match``). Combining merges the extras of the parts.

Example:
    >>> from botcore.matchers import keyword, group, private
    >>> rule = keyword("price", "价格") & (private() | group())
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botcore.message import InboundMessage

__all__ = [
    "CommandMatch",
    "Matcher",
    "always",
    "channel",
    "command",
    "event",
    "group",
    "keyword",
    "mentioned",
    "private",
    "regex",
]

Extras = dict[str, Any]
# "／" is the full-width slash Chinese input methods type.
_COMMAND = re.compile(r"^[/／](?P<name>[A-Za-z0-9_\-]{1,64})(?:@(?P<bot>[A-Za-z0-9_]+))?(?:\s+|$)")


@dataclass(frozen=True, slots=True)
class CommandMatch:
    """A parsed command: ``/order 123 express`` gives name ``order``, args ``("123",
    "express")`` and raw_args ``"123 express"``."""

    name: str
    args: tuple[str, ...]
    raw_args: str


class Matcher:
    """A predicate over messages that can carry extras; build with the functions below."""

    def __init__(self, test: Callable[[InboundMessage], Extras | None], name: str) -> None:
        self._test = test
        self.name = name

    def __call__(self, message: InboundMessage) -> Extras | None:
        """``None`` when the message does not match, else the extras (maybe empty)."""
        return self._test(message)

    def __and__(self, other: Matcher) -> Matcher:
        def both(message: InboundMessage) -> Extras | None:
            left = self(message)
            if left is None:
                return None
            right = other(message)
            return None if right is None else {**left, **right}

        return Matcher(both, f"({self.name} & {other.name})")

    def __or__(self, other: Matcher) -> Matcher:
        def either(message: InboundMessage) -> Extras | None:
            left = self(message)
            return left if left is not None else other(message)

        return Matcher(either, f"({self.name} | {other.name})")

    def __invert__(self) -> Matcher:
        return Matcher(lambda m: {} if self(m) is None else None, f"~{self.name}")

    def __repr__(self) -> str:
        return f"Matcher({self.name})"


def _when(predicate: Callable[[InboundMessage], bool], name: str) -> Matcher:
    return Matcher(lambda m: {} if predicate(m) else None, name)


def always() -> Matcher:
    """Matches everything."""
    return _when(lambda m: True, "always")


def command(*names: str) -> Matcher:
    """``/name args`` (also ``/name@botname`` in groups). Extras: ``command``.

    The ``@botname`` suffix must match the bot's username when the adapter knows it
    (``message.platform["bot_username"]``); a command addressed to another bot is ignored.
    """
    wanted = {n.lstrip("/").lower() for n in names}

    def test(message: InboundMessage) -> Extras | None:
        if message.kind != "message":
            return None
        text = message.text.strip()
        found = _COMMAND.match(text)
        if not found or found["name"].lower() not in wanted:
            return None
        suffix = found["bot"]
        username = str(message.platform.get("bot_username") or "")
        if suffix and username and suffix.lower() != username.lower():
            return None
        raw = text[found.end():].strip()
        return {"command": CommandMatch(found["name"].lower(), tuple(raw.split()), raw)}

    return Matcher(test, f"command({', '.join(sorted(wanted))})")


def regex(pattern: str | re.Pattern[str], flags: int = 0) -> Matcher:
    """The text matches ``pattern`` (``re.search``). Extras: ``match`` (the re.Match)."""
    compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern

    def test(message: InboundMessage) -> Extras | None:
        found = compiled.search(message.text) if message.kind == "message" else None
        return None if found is None else {"match": found}

    return Matcher(test, f"regex({compiled.pattern!r})")


def keyword(*words: str) -> Matcher:
    """The text contains any of ``words`` (case-insensitive). Extras: ``keyword``."""
    lowered = [w.lower() for w in words]

    def test(message: InboundMessage) -> Extras | None:
        text = message.text.lower()
        for word in lowered:
            if message.kind == "message" and word in text:
                return {"keyword": word}
        return None

    return Matcher(test, f"keyword({', '.join(words)})")


def channel(*names: str) -> Matcher:
    """The message came from one of these channels (``wecom``, ``feishu``, ...)."""
    allowed = set(names)
    return _when(lambda m: m.channel in allowed, f"channel({', '.join(names)})")


def group() -> Matcher:
    """Group chats only."""
    return _when(lambda m: m.chat_type == "group", "group")


def private() -> Matcher:
    """Private (one-to-one) chats only."""
    return _when(lambda m: m.chat_type == "private", "private")


def mentioned() -> Matcher:
    """The bot was @-mentioned (always true in private chats)."""
    return _when(lambda m: m.mentioned, "mentioned")


def event(*types: str) -> Matcher:
    """Non-message events of these types (all events when none given). Extras: ``event``."""
    allowed = set(types)

    def test(message: InboundMessage) -> Extras | None:
        if message.kind != "event" or (allowed and message.event_type not in allowed):
            return None
        return {"event": message.event_type}

    return Matcher(test, f"event({', '.join(types) or '*'})")


def all_of(matchers: Iterable[Matcher]) -> Matcher:
    """Combine matchers with ``&`` (``always()`` when empty)."""
    result = always()
    for item in matchers:
        result = result & item
    return result


def extras_view(extras: Mapping[str, Any], name: str) -> Any:
    """Read one extra (``None`` if absent); used by TurnContext's typed properties."""
    return extras.get(name)
