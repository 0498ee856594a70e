"""Chunking: sections to search-sized chunks that keep their place in the document.

Markdown is first split at headings (``#`` to ``####``), so each chunk knows its heading
path; the text is then cut at paragraph, line and sentence ends, Chinese (。！？；) as well as
Latin (. ! ? ;), before falling back to commas and spaces. FAQ rows are never cut.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from botcore.kb.loaders import LoadedDocument, Section

__all__ = ["SEPARATORS", "Chunk", "Chunker"]

SEPARATORS = [
    "\n\n", "\n", "。", "！", "？", "；", ". ", "! ", "? ", "; ", "，", "、", ", ", " ", "",
]
"""Split points, strongest first (sentence ends before commas)."""

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]


@dataclass(frozen=True)
class Chunk:
    """One searchable piece of a document.

    Attributes:
        text: the chunk's text (what a citation quotes).
        title: the document's title.
        heading: heading path, ``A > B``.
        page: 1-based page (PDF) or None.
        position: 0-based order of the chunk in its document.
    """

    text: str
    title: str
    heading: str
    page: int | None
    position: int

    def embed_text(self) -> str:
        """What gets embedded: the chunk with its title and heading as context."""
        with_title = not self.heading.startswith(self.title)
        parts = [self.title, self.heading] if with_title else [self.heading]
        context = " > ".join(part for part in parts if part)
        return f"{context}\n{self.text}" if context else self.text


class Chunker:
    """Splits documents into chunks of at most ``size`` characters.

    Args:
        size: characters per chunk at most (Chinese: about as many tokens).
        overlap: characters shared by neighbouring chunks.
    """

    def __init__(self, size: int = 400, overlap: int = 40) -> None:
        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=size,
            chunk_overlap=min(overlap, size // 2),
            separators=SEPARATORS,
            keep_separator="end",
            strip_whitespace=True,
        )
        self._headings = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True)

    def split(self, document: LoadedDocument) -> list[Chunk]:
        """All chunks of ``document``, positions numbered from 0."""
        pieces: list[tuple[str, str, int | None]] = []
        for section in document.sections:
            pieces.extend(self._split_section(section))
        return [
            Chunk(text=text, title=document.title, heading=heading, page=page, position=n)
            for n, (text, heading, page) in enumerate(pieces)
        ]

    def _split_section(self, section: Section) -> list[tuple[str, str, int | None]]:
        if section.atomic:
            return [(section.text.strip(), section.heading, section.page)]
        parts: list[tuple[str, str]] = [(section.text, section.heading)]
        if section.markdown:
            parts = []
            for doc in self._headings.split_text(section.text):
                path = [str(doc.metadata[key]) for _, key in _HEADERS if key in doc.metadata]
                parts.append((doc.page_content, " > ".join(path)))
        out: list[tuple[str, str, int | None]] = []
        for text, heading in parts:
            for piece in self._splitter.split_text(text):
                if piece.strip():
                    out.append((piece.strip(), heading, section.page))
        return out
