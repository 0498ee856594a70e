"""Helpers of the knowledge-base tests: fixture files of every format, a sync ingest."""

from __future__ import annotations

import asyncio
from pathlib import Path

from botcore.kb.ingest import Ingestor, IngestReport
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import Scope


def ingest(
    settings: KBSettings, resources: KBResources, paths: list[Path], *, kb: str = "test",
    tenant: str = "t1", bot: str = "*", sync: bool = False,
) -> IngestReport:
    """Ingest synchronously (helper for tests)."""
    ingestor = Ingestor(settings, kb, Scope(tenant, bot), resources)
    return asyncio.run(ingestor.ingest_paths(paths, sync=sync))


def make_pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (ASCII)."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b"", b"<< /Type /Font "
                            b"/Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        content = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents "
                       b"%d 0 R /Resources << /Font << /F1 3 0 R >> >> >>" % content)
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def write_fixtures(folder: Path) -> dict[str, Path]:
    """One small file per supported format; returns name → path."""
    import docx
    import openpyxl

    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "txt": folder / "notes.txt", "md": folder / "guide.md", "html": folder / "page.html",
        "pdf": folder / "manual.pdf", "docx": folder / "policy.docx",
        "xlsx": folder / "faq.xlsx", "csv": folder / "faq.csv",
    }
    files["txt"].write_text("仓库位于杭州。发货后三天内送达！", encoding="utf-8")
    files["md"].write_text("# Guide\n\n## Returns\n\nReturns are accepted within 30 days.\n\n"
                           "## 运费\n\n退货运费由买家承担。", encoding="utf-8")
    files["html"].write_text("<html><head><title>Store hours</title></head><body><h1>Hours</h1>"
                             "<p>Open 9am to 6pm.</p><script>var x;</script></body></html>")
    files["pdf"].write_bytes(make_pdf(["Warranty lasts two years", "Batteries are excluded"]))
    document = docx.Document()
    document.add_heading("Privacy policy", level=1)
    document.add_paragraph("We never sell personal data.")
    document.save(str(files["docx"]))
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "常见问题"
    sheet.append(["问题", "答案"])
    sheet.append(["支持货到付款吗？", "支持，限中国大陆地区。"])
    sheet.append(["Do you ship abroad?", "Yes, to 30 countries."])
    book.save(str(files["xlsx"]))
    files["csv"].write_text("question,answer\nHow do I pay?,By card or Alipay.\n",
                            encoding="utf-8")
    return files
