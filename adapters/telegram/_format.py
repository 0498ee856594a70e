"""Model output → Telegram HTML parts that always parse and never exceed the size limit.

Text is first turned into *runs* (a piece of text plus the tags around it), then split on
the plain text, then each part is rendered. Tags are produced after splitting, so no part can
end inside a tag or an entity, and every part closes what it opens. Only ``&``, ``<`` and
``>`` are escaped (the HTML style of https://core.telegram.org/bots/api#formatting-options),
so no model output can produce "can't parse entities".

Lengths are counted in UTF-16 code units on the rendered HTML (tags and entities included),
which is never less than what Telegram counts ("1-4096 characters after entities parsing").
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["LIMIT", "Run", "escape", "parse_markdown", "render", "split_runs", "to_parts",
           "utf16_len"]

LIMIT = 4096
_SAFE_URL = re.compile(r"^(https?://|tg://)[^\s<>\"]+$", re.IGNORECASE)
_BLOCK = re.compile(
    r"```[A-Za-z0-9_+-]*\n?(?P<pre>.*?)```"
    r"|\*\*(?P<bold>(?=\S)[^\n]*?\S)\*\*",
    re.DOTALL,
)
_INLINE = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|\[(?P<label>[^\]\n]+)\]\((?P<url>[^)\s]+)\)",
)
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?。！？…])\s+|\n")
_WORD = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Run:
    """A piece of plain text and the HTML tags around it (outermost first)."""

    text: str
    tags: tuple[tuple[str, str], ...] = ()


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (what Telegram counts; non-BMP emoji count 2)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Escape ``&``, ``<`` and ``>`` (quotes too, which is harmless and safe in attributes)."""
    return html.escape(text, quote=True)


def _inline(text: str, outer: tuple[tuple[str, str], ...]) -> list[Run]:
    runs: list[Run] = []
    pos = 0
    for match in _INLINE.finditer(text):
        url = match.group("url")
        if url is not None and not _SAFE_URL.match(url):
            continue  # not a link we trust: keep it as literal text
        if match.start() > pos:
            runs.append(Run(text[pos:match.start()], outer))
        if match.group("code") is not None:
            runs.append(Run(match.group("code"), (*outer, ("<code>", "</code>"))))
        else:
            anchor = (f'<a href="{escape(url)}">', "</a>")
            runs.append(Run(match.group("label"), (*outer, anchor)))
        pos = match.end()
    if pos < len(text):
        runs.append(Run(text[pos:], outer))
    return runs


def parse_markdown(text: str) -> list[Run]:
    """Runs for the small Markdown subset models use: ``**bold**``, `` `code` ``,
    fenced ```` ```pre``` ```` blocks and ``[label](https://url)``. Anything else, including
    unbalanced markers, stays literal text (escaped when rendered)."""
    runs: list[Run] = []
    pos = 0
    for match in _BLOCK.finditer(text):
        runs.extend(_inline(text[pos:match.start()], ()))
        if match.group("pre") is not None:
            runs.append(Run(match.group("pre").rstrip("\n"), (("<pre>", "</pre>"),)))
        else:
            runs.extend(_inline(match.group("bold"), (("<b>", "</b>"),)))
        pos = match.end()
    runs.extend(_inline(text[pos:], ()))
    return [run for run in runs if run.text]


def render(runs: list[Run]) -> str:
    """HTML for ``runs``: each run escaped and wrapped in its own tags."""
    out = []
    for run in runs:
        opens = "".join(tag for tag, _ in run.tags)
        closes = "".join(close for _, close in reversed(run.tags))
        out.append(f"{opens}{escape(run.text)}{closes}")
    return "".join(out)


def _slice(runs: list[Run], starts: list[int], start: int, end: int) -> list[Run]:
    """The runs covering plain-text positions ``[start, end)``."""
    out = []
    for run, run_start in zip(runs, starts, strict=True):
        lo, hi = max(start, run_start), min(end, run_start + len(run.text))
        if lo < hi:
            out.append(Run(run.text[lo - run_start:hi - run_start], run.tags))
    return out


def _best_cut(plain: str, start: int, end: int) -> int:
    """Where to end a part that may reach ``end``: a paragraph break, else a sentence end in
    the window's second half, else a word break, else ``end`` itself."""
    if end >= len(plain):
        return end
    window = plain[start:end + 1]
    half = (end - start) // 2
    for pattern, min_pos in ((_PARAGRAPH, half), (_SENTENCE, half), (_WORD, 1)):
        cuts = [m.start() for m in pattern.finditer(window) if m.start() >= min_pos]
        if cuts:
            return start + cuts[-1]
    return end


def split_runs(runs: list[Run], limit: int = LIMIT) -> list[list[Run]]:
    """Split ``runs`` into parts whose rendered HTML is at most ``limit`` UTF-16 units.

    Whitespace at a split point is dropped; no other character is lost or added.
    """
    plain = "".join(run.text for run in runs)
    starts, acc = [], 0
    for run in runs:
        starts.append(acc)
        acc += len(run.text)
    parts: list[list[Run]] = []
    start = 0
    while start < len(plain):
        while start < len(plain) and plain[start].isspace():
            start += 1
        if start >= len(plain):
            break
        lo, hi = start + 1, len(plain)  # largest end whose rendering fits
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if utf16_len(render(_slice(runs, starts, start, mid))) <= limit:
                lo = mid
            else:
                hi = mid - 1
        cut = _best_cut(plain, start, lo)
        end = cut
        while end > start and plain[end - 1].isspace():
            end -= 1
        if end > start:
            parts.append(_slice(runs, starts, start, end))
        start = max(cut, start + 1)
    return parts


def to_parts(text: str, fmt: str, limit: int = LIMIT) -> list[str]:
    """The HTML messages for ``text`` (``fmt`` ``markdown`` or ``text``), each within
    ``limit`` UTF-16 units. Empty or blank text gives no parts."""
    runs = parse_markdown(text) if fmt == "markdown" else [Run(text)]
    return [render(part) for part in split_runs([run for run in runs if run.text], limit)]
