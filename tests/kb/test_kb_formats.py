"""Loaders and chunking: every format, heading paths, Chinese sentence splits, bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from kb_helpers import make_pdf, write_fixtures
from pypdf import PdfReader, PdfWriter

from botcore.kb.chunking import Chunker
from botcore.kb.errors import IngestError
from botcore.kb.loaders import load_file


def _load(path: Path) -> list[str]:
    return [c.text for c in Chunker(400, 40).split(load_file(path, path.read_bytes()))]


def test_every_format_loads(tmp_path: Path) -> None:
    files = write_fixtures(tmp_path)
    assert _load(files["txt"]) == ["仓库位于杭州。发货后三天内送达！"]
    assert "Open 9am to 6pm." in _load(files["html"])[0]
    assert all("var x" not in text for text in _load(files["html"]))
    assert "We never sell personal data." in _load(files["docx"])
    assert _load(files["xlsx"]) == ["支持货到付款吗？\n支持，限中国大陆地区。",
                                    "Do you ship abroad?\nYes, to 30 countries."]
    assert _load(files["csv"]) == ["How do I pay?\nBy card or Alipay."]


def test_pdf_pages_and_markdown_headings(tmp_path: Path) -> None:
    files = write_fixtures(tmp_path)
    pdf = Chunker().split(load_file(files["pdf"], files["pdf"].read_bytes()))
    assert [(c.text, c.page) for c in pdf] == [("Warranty lasts two years", 1),
                                              ("Batteries are excluded", 2)]
    md = Chunker().split(load_file(files["md"], files["md"].read_bytes()))
    assert [(c.heading, c.position) for c in md] == [("Guide > Returns", 0), ("Guide > 运费", 1)]
    assert md[0].title == "Guide"
    docx = Chunker().split(load_file(files["docx"], files["docx"].read_bytes()))
    assert docx[0].heading == "Privacy policy"


def test_chinese_text_is_cut_at_sentence_ends() -> None:
    text = "第一句话说明退货流程。第二句话说明运费规则！第三句话问能否加急？第四句；结束。"
    from botcore.kb.loaders import LoadedDocument, Section

    chunks = Chunker(size=20, overlap=0).split(LoadedDocument("t", [Section(text)]))
    assert len(chunks) > 1
    assert all(c.text[-1] in "。！？；" for c in chunks)


def _encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["secret"]))))
    writer.encrypt("pw")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"  \n", "empty file"),
        ("data.bin", b"\x00\x01", "unknown format"),
        ("broken.pdf", b"%PDF-1.4 nonsense", "unreadable PDF"),
        ("locked.pdf", _encrypted_pdf(), "encrypted PDF"),
        ("blank.pdf", make_pdf([""]), "no extractable text"),
        ("broken.docx", b"not a zip", "unreadable DOCX"),
        ("broken.xlsx", b"not a zip", "unreadable XLSX"),
        ("nocols.csv", b"name,price\nx,1\n", "question"),
    ],
)
def test_bad_input_has_a_clear_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(IngestError) as caught:
        load_file(path, data)
    assert reason in caught.value.reason
    assert caught.value.source == str(path)


def test_html_text_outside_paragraphs_is_kept(tmp_path: Path) -> None:
    """Answers often live in <div>, <span> or <dd>, not <p>: all of it is ingested, each
    text once, in page order."""
    page = tmp_path / "help.html"
    page.write_text(
        "<html><head><title>Help</title><style>.x{}</style></head><body>"
        "<nav>Home | Shop</nav><h2>Refunds <small>updated</small></h2>"
        "<div class='answer'>Refunds take <b>5 days</b>.<div>Contact <span>support@x.cn</span>"
        "</div></div><dl><dt>运费</dt><dd><span>满 99 元包邮</span></dd></dl>"
        "<ul><li>First <p>nested para</p></li></ul><!-- a comment -->"
        "<table><tr><th>Plan</th><td>Pro</td></tr></table><pre>code  block</pre>"
        "</body></html>", encoding="utf-8")
    document = load_file(page, page.read_bytes())
    text = document.sections[0].text
    assert document.title == "Help"
    for expected in ("## Refunds updated", "Refunds take 5 days.", "Contact support@x.cn",
                     "运费", "满 99 元包邮", "First", "nested para", "Plan", "Pro",
                     "code block"):
        assert text.count(expected) == 1, (expected, text)
    assert text.index("Refunds take") < text.index("满 99") < text.index("Pro")
    for dropped in ("Home | Shop", ".x{}", "a comment"):
        assert dropped not in text


def test_html_fragment_without_blocks(tmp_path: Path) -> None:
    page = tmp_path / "frag.html"
    page.write_text("<span>退货请联系</span> <a href='#'>客服</a>", encoding="utf-8")
    assert load_file(page, page.read_bytes()).sections[0].text == "退货请联系 客服"
