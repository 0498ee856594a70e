"""File loaders: bytes on disk to a :class:`LoadedDocument` of sections.

One loader per format, chosen by file extension through :data:`LOADERS`. HTML and DOCX are
turned into Markdown (headings become ``#`` lines) so that one heading-aware chunker serves
them all. FAQ sheets (xlsx, csv) give one pre-cut section per question/answer row.
A loader raises :class:`~botcore.kb.errors.IngestError` with a short reason for bad input.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botcore.kb.errors import IngestError

__all__ = ["LOADERS", "LoadedDocument", "Section", "load_file"]

QUESTION_HEADERS = frozenset({"question", "q", "问题", "问", "提问", "标准问题", "faq"})
ANSWER_HEADERS = frozenset({"answer", "a", "答案", "答", "回答", "回复"})


@dataclass(frozen=True)
class Section:
    """A run of text with where it came from.

    Attributes:
        text: the text (Markdown when ``markdown`` is true).
        heading: heading path, e.g. ``退货 > 运费`` (FAQ: the sheet name).
        page: 1-based page number (PDF), else None.
        markdown: split by Markdown headings before chunking.
        atomic: never split (one FAQ question and its answer).
    """

    text: str
    heading: str = ""
    page: int | None = None
    markdown: bool = False
    atomic: bool = False


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed file: its title and sections."""

    title: str
    sections: list[Section] = field(default_factory=list)


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), then GB18030, the usual encodings of Chinese text files."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise IngestError("", "not UTF-8 or GB18030 text")


def _load_text(path: Path, data: bytes) -> LoadedDocument:
    return LoadedDocument(path.stem, [Section(decode_text(data))])


def _load_markdown(path: Path, data: bytes) -> LoadedDocument:
    text = decode_text(data)
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), path.stem)
    return LoadedDocument(title, [Section(text, markdown=True)])


_HTML_BLOCKS = frozenset([
    "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
    "div", "dl", "dt", "figcaption", "figure", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "li", "main", "ol", "p", "pre", "section", "summary", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "ul",
])
_HTML_WHOLE = frozenset(["h1", "h2", "h3", "h4", "h5", "h6", "pre"])


def _own_text(node: Any) -> str:
    """The text that belongs to ``node`` itself: its strings and inline children's, not
    its block children's (they are visited on their own)."""
    from bs4.element import NavigableString, Tag

    parts: list[str] = []
    for child in node.children:
        if isinstance(child, Tag):
            if child.name == "br":
                parts.append("\n")
            elif child.name not in _HTML_BLOCKS:
                parts.append(child.get_text())   # inline: joined as written, like a browser
        elif isinstance(child, NavigableString) and type(child) is NavigableString:
            parts.append(str(child))
    return " ".join("".join(parts).split())


def _load_html(path: Path, data: bytes) -> LoadedDocument:
    """Every text of the page, each under its nearest block element (a ``<div>`` or a
    ``<span>`` in a ``<dd>`` counts as much as a ``<p>``); headings become Markdown ones."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(["script", "style", "nav", "footer", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else path.stem
    if soup.title:
        soup.title.decompose()
    lines: list[str] = []
    for node in soup.find_all(_HTML_BLOCKS):
        if node.find_parent(_HTML_WHOLE) is not None:
            continue  # inside a heading or <pre>: already taken whole
        name = node.name or ""
        if name in _HTML_WHOLE:
            text = " ".join(node.get_text(" ", strip=True).split())
        else:
            text = _own_text(node)
        if not text:
            continue
        level = int(name[1]) if name[:1] == "h" and name[1:].isdigit() else 0
        lines.append(f"{'#' * level} {text}" if level else text)
    if not soup.find_all(_HTML_BLOCKS):  # a fragment with no block element at all
        lines = [" ".join(soup.get_text(" ", strip=True).split())]
    return LoadedDocument(title or path.stem, [Section("\n\n".join(lines), markdown=True)])


def _load_pdf(path: Path, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise IngestError(str(path), "encrypted PDF (remove the password first)")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = reader.metadata.title if reader.metadata else None
    except IngestError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise IngestError(str(path), f"unreadable PDF ({type(exc).__name__})") from exc
    sections = [Section(text, page=n) for n, text in enumerate(pages, 1) if text.strip()]
    if not sections:
        raise IngestError(str(path), "PDF has no extractable text (scanned? run OCR first)")
    return LoadedDocument(str(meta_title or path.stem), sections)


def _load_docx(path: Path, data: bytes) -> LoadedDocument:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises several unrelated types on bad zips
        raise IngestError(str(path), f"unreadable DOCX ({type(exc).__name__})") from exc
    lines: list[str] = []
    for para in document.paragraphs:
        text = para.text.strip()
        style = (para.style.name if para.style is not None else "") or ""
        if not text:
            continue
        if style.startswith("Heading") and style[-1:].isdigit():
            lines.append(f"{'#' * min(int(style[-1]), 6)} {text}")
        elif style == "Title":
            lines.append(f"# {text}")
        else:
            lines.append(text)
    for table in document.tables:
        lines.extend(" | ".join(c.text.strip() for c in row.cells) for row in table.rows)
    title = document.core_properties.title or path.stem
    return LoadedDocument(title, [Section("\n\n".join(lines), markdown=True)])


def _faq_sections(rows: Iterable[Sequence[Any]], sheet: str, source: str) -> list[Section]:
    clean = [[str(c).strip() if c is not None else "" for c in row] for row in rows]
    clean = [row for row in clean if any(row)]
    if not clean:
        return []
    header = [c.lower() for c in clean[0]]
    q_col = next((i for i, h in enumerate(header) if h in QUESTION_HEADERS), None)
    a_col = next((i for i, h in enumerate(header) if h in ANSWER_HEADERS), None)
    if q_col is None or a_col is None:
        raise IngestError(source, "FAQ sheet needs 'question'/'问题' and 'answer'/'答案' columns")
    out = []
    for row in clean[1:]:
        question = row[q_col] if q_col < len(row) else ""
        answer = row[a_col] if a_col < len(row) else ""
        if question and answer:
            out.append(Section(f"{question}\n{answer}", heading=sheet, atomic=True))
    return out


def _load_csv(path: Path, data: bytes) -> LoadedDocument:
    rows = list(csv.reader(io.StringIO(decode_text(data))))
    return LoadedDocument(path.stem, _faq_sections(rows, "", str(path)))


def _load_xlsx(path: Path, data: bytes) -> LoadedDocument:
    import openpyxl

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zip, XML and key errors alike
        raise IngestError(str(path), f"unreadable XLSX ({type(exc).__name__})") from exc
    sections: list[Section] = []
    for sheet in book.worksheets:
        sections.extend(_faq_sections(sheet.iter_rows(values_only=True), sheet.title, str(path)))
    book.close()
    return LoadedDocument(path.stem, sections)


LOADERS: dict[str, Callable[[Path, bytes], LoadedDocument]] = {
    ".txt": _load_text,
    ".md": _load_markdown,
    ".markdown": _load_markdown,
    ".html": _load_html,
    ".htm": _load_html,
    ".pdf": _load_pdf,
    ".docx": _load_docx,
    ".csv": _load_csv,
    ".xlsx": _load_xlsx,
}
"""File extension → loader."""


def load_file(path: Path, data: bytes) -> LoadedDocument:
    """Parse one file's bytes.

    Args:
        path: the file (its extension picks the loader; its name is the fallback title).
        data: the file's content.

    Returns:
        The document; never empty.

    Raises:
        IngestError: unknown format, empty file, unreadable or encrypted content.
    """
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(str(path), f"unknown format {path.suffix or '(no extension)'!r}")
    if not data.strip():
        raise IngestError(str(path), "empty file")
    try:
        document = loader(path, data)
    except IngestError as exc:
        raise IngestError(str(path), exc.reason) from None
    if not any(section.text.strip() for section in document.sections):
        raise IngestError(str(path), "no text found")
    return document
