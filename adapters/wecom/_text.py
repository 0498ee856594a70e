"""Splitting long text for WeCom's byte limits (UTF-8 bytes, never inside a character)."""

from __future__ import annotations

__all__ = ["split_utf8"]

_BOUNDARIES = frozenset("。！？.!?\n")


def split_utf8(text: str, limit: int) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` UTF-8 bytes.

    A part ends after the last sentence boundary (``。！？.!?`` or a newline) that fits;
    a sentence longer than ``limit`` is cut at the last whole character that fits.
    Leading newlines of a part are dropped; an empty text gives ``[""]``.

    Example:
        >>> split_utf8("一二。三四", 7)
        ['一二。', '三四']
    """
    if limit < 4:
        raise ValueError("limit must hold at least one UTF-8 character (4 bytes)")
    parts: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        size = 0
        fit = 0  # characters that fit
        cut = 0  # characters up to and including the last boundary that fits
        for index, char in enumerate(rest):
            size += len(char.encode("utf-8"))
            if size > limit:
                break
            fit = index + 1
            if char in _BOUNDARIES:
                cut = fit
        end = cut or fit
        parts.append(rest[:end])
        rest = rest[end:].lstrip("\n")
    if rest or not parts:
        parts.append(rest)
    return parts
