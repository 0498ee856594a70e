"""HTML rendering and splitting: any model output gives parts Telegram accepts."""

from __future__ import annotations

import random

import pytest
from fake_telegram import parse_html, utf16_len

from adapters.telegram._format import escape, to_parts


def squash(text: str) -> str:
    return "".join(text.split())


def test_plain_text_is_escaped() -> None:
    assert to_parts("a < b && c > d \"q\"", "text") == [
        "a &lt; b &amp;&amp; c &gt; d &quot;q&quot;"]


def test_markdown_subset() -> None:
    text = ("**Bold** and `x<y` then\n```python\nif a < b:\n    pass\n```\n"
            "see [docs & more](https://example.com/?a=1&b=2)")
    (html,) = to_parts(text, "markdown")
    assert html == (
        "<b>Bold</b> and <code>x&lt;y</code> then\n<pre>if a &lt; b:\n    pass</pre>\n"
        'see <a href="https://example.com/?a=1&amp;b=2">docs &amp; more</a>')
    assert parse_html(html).startswith("Bold and x<y then")


@pytest.mark.parametrize("text", [
    "**not closed", "`half", "```never closed", "[x](javascript:alert(1))", "a ** b ** c",
    "[label](https://ok.example/\"onmouseover=x)", "<script>alert(1)</script>", "&amp; &#123;",
    "** **", "****", "[](https://x)", "**`code`**", "**[l](https://x.y)**",
])
def test_markdown_edge_cases_always_parse(text: str) -> None:
    for part in to_parts(text, "markdown"):
        parse_html(part)


def test_unsafe_link_stays_literal() -> None:
    (html,) = to_parts("[x](javascript:alert(1))", "markdown")
    assert "<a" not in html
    assert parse_html(html) == "[x](javascript:alert(1))"


def test_blank_text_has_no_parts() -> None:
    assert to_parts("  \n\n ", "text") == []
    assert to_parts("", "markdown") == []


def test_split_prefers_paragraphs() -> None:
    para = ("Sentence number one is here. " * 40).strip()
    text = "\n\n".join([para] * 6)
    parts = to_parts(text, "text")
    assert len(parts) > 1
    assert all(utf16_len(part) <= 4096 for part in parts)
    assert all(part.endswith("here.") for part in parts)
    assert squash("".join(parts)) == squash(text)


def test_split_falls_back_to_words_then_hard_cut() -> None:
    words = " ".join(["word"] * 3000)
    parts = to_parts(words, "text")
    assert all(utf16_len(p) <= 4096 and not p.endswith(" ") for p in parts)
    assert all(p.split(" ")[-1] == "word" for p in parts)
    blob = "x" * 9000
    parts = to_parts(blob, "text")
    assert [len(p) for p in parts] == [4096, 4096, 808]


def test_escaping_counts_toward_the_limit() -> None:
    parts = to_parts("&" * 5000, "text")
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert "".join(parse_html(p) for p in parts) == "&" * 5000
    assert all(not p.endswith("&amp") and not p.endswith("&") for p in parts)


def test_emoji_count_as_two_units() -> None:
    parts = to_parts("😀" * 3000, "text")
    assert [utf16_len(p) for p in parts] == [4096, 1904]


def test_long_pre_block_is_split_with_tags_closed() -> None:
    code = "\n".join(f"line {i} < {i + 1}" for i in range(600))
    parts = to_parts(f"Here:\n```\n{code}\n```\nDone.", "markdown")
    assert len(parts) > 1
    for part in parts:
        assert utf16_len(part) <= 4096
        parse_html(part)
    assert squash("".join(parse_html(p) for p in parts)) == squash(f"Here:{code}Done.")


_ALPHABET = [*("ab <>&*_`[]()#!.?\n\"'"), "😀", "é", "中", "**", "```", "](https://x.io)"]


@pytest.mark.parametrize("seed", range(25))
def test_random_model_output_always_parses(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(1, 6000)))
    for fmt in ("text", "markdown"):
        parts = to_parts(text, fmt)
        plain = ""
        for part in parts:
            assert utf16_len(part) <= 4096
            plain += parse_html(part)
        if fmt == "text":
            assert squash(plain) == squash(text)


def test_escape_matches_telegram_entities() -> None:
    assert parse_html(escape("<&>\"'")) == "<&>\"'"
