"""Query latency of the bm25, dense and hybrid retrievers at 10k and 100k chunks, with baselines in the same run.

    python benchmarks/retrieval.py [--sizes 10000 100000] [--queries 200]

Chunks: real passages from the shared corpora (else the demo documents), embedded once with the real model,
then repeated with a unique reference number and a small perturbation of their vector until the size is
reached - realistic text and vector statistics without hours of embedding. The knowledge base is written
through the product's own storage (SQLite + FAISS + BM25). Every latency includes embedding the question.
Baselines: numpy brute-force cosine (dense, one BLAS thread), the `bm25s` library (BM25), and both fused by
equal-weight RRF (Haystack-style hybrid).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.core.settings import Settings  # noqa: E402
from rag.core.types import Chunk, Document, Section  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import Changeset, DocumentUpdate, KnowledgeBase  # noqa: E402
from rag.text.lexical import bm25_tokens  # noqa: E402
from rag.text.sentences import sentence_spans  # noqa: E402
from rag.wiring import create_retriever  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"


def real_texts(limit: int) -> tuple[list[str], list[str]]:
    """(passages of ~60 words, questions) from the shared corpora, or from the demo data."""
    passages, questions = [], []
    for name in ("rgb-en", "clapnq", "stackfaq", "rgb-zh"):
        folder = DATASETS / name
        if not (folder / "corpus.jsonl").is_file():
            continue
        for line in (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
            text = json.loads(line)["text"]
            spans = sentence_spans(text)
            for i in range(0, len(spans), 3):
                piece = " ".join(text[s.start : s.end] for s in spans[i : i + 3])
                if len(piece) > 40:
                    passages.append(piece)
        questions += [
            json.loads(q)["text"] for q in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:100]
        ]
    if not passages:
        for path in sorted((ROOT / "data").glob("*.md")):
            text = path.read_text(encoding="utf-8")
            passages += [text[s.start : s.end] for s in sentence_spans(text) if s.end - s.start > 40]
        questions = [
            q["question"] for q in json.loads((ROOT / "tests/fixtures/demo_questions.json").read_text(encoding="utf-8"))
        ]
    return passages[:limit], questions


def build_kb(
    path: Path, texts: list[str], vectors: np.ndarray, size: int, index_type: str, model: str
) -> KnowledgeBase:
    rng = np.random.default_rng(7)
    kb = KnowledgeBase.create(path, embedding_model=model, dimension=vectors.shape[1], index_type=index_type)
    updates = []
    for i in range(size):
        base = i % len(texts)
        text = f"{texts[base]} (ref {i})"
        vector = vectors[base] + rng.normal(0, 0.02, vectors.shape[1]).astype(np.float32)
        vector /= np.linalg.norm(vector)
        doc = Document(source=f"bench/{i}.txt", sections=[Section(text=text)])
        chunk = Chunk(doc_id=doc.doc_id, source=doc.source, text=text, position=0)
        updates.append(DocumentUpdate(doc, str(i), [chunk], vector[None, :]))
    kb.apply(Changeset(upserts=updates))
    return kb


def percentiles(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--base", type=int, default=3000, help="distinct real passages to embed")
    args = parser.parse_args()

    settings = Settings(_env_file=None)
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    texts, questions = real_texts(args.base)
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    print(
        f"embedded {len(texts)} distinct passages in {time.perf_counter() - started:.0f}s; "
        f"{min(args.queries, len(questions))} questions"
    )
    questions = (questions * (1 + args.queries // max(1, len(questions))))[: args.queries]

    import bm25s

    rows = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-retrieval-") as tmp:
        for size in args.sizes:
            for index_type in ("flat", "hnsw"):
                started = time.perf_counter()
                kb = build_kb(Path(tmp) / f"{size}-{index_type}", texts, vectors, size, index_type, embedder.name)
                build_s = time.perf_counter() - started
                retrievers = {
                    kind: create_retriever(kind, kb, embedder, settings) for kind in ("bm25", "dense", "hybrid")
                }
                if index_type == "hnsw":
                    retrievers = {"dense": retrievers["dense"], "hybrid": retrievers["hybrid"]}
                for kind, retriever in retrievers.items():
                    for q in questions[:10]:
                        retriever.retrieve(q, settings.top_k)  # warm-up
                    ms = []
                    for q in questions:
                        t = time.perf_counter()
                        retriever.retrieve(q, settings.top_k)
                        ms.append((time.perf_counter() - t) * 1000)
                    rows.append((size, f"{kind} ({index_type})", *percentiles(ms), f"build {build_s:.0f}s"))
                if index_type == "flat":
                    rows += baselines(kb, embedder, questions, size, settings.top_k, bm25s)
                kb.close()

    print(f"{'chunks':>7}  {'retriever':<34} {'p50 ms':>7} {'p95 ms':>7}  note")
    for size, name, p50, p95, note in rows:
        print(f"{size:>7}  {name:<34} {p50:>7.1f} {p95:>7.1f}  {note}")
    hybrid_hnsw = [r for r in rows if r[0] == max(args.sizes) and r[1] == "hybrid (hnsw)"]
    if hybrid_hnsw:
        p95 = hybrid_hnsw[0][3]
        print(
            f"hybrid (hnsw) p95 at {max(args.sizes)} chunks: {p95:.1f} ms "
            f"{'meets' if p95 <= 20 else 'MISSES'} the target <= 20 ms"
        )


def baselines(kb: KnowledgeBase, embedder, questions: list[str], size: int, k: int, bm25s) -> list[tuple]:
    """Plain numpy cosine, bm25s, and their equal-weight RRF, over the same chunks."""
    chunks = kb.all_chunks()
    ids = np.array([c.id for c in chunks])
    matrix = kb.vectors([int(i) for i in ids])
    corpus_tokens = [bm25_tokens(c.text) for c in chunks]
    lexical = bm25s.BM25()
    lexical.index(corpus_tokens, show_progress=False)
    pool = 100

    from threadpoolctl import threadpool_limits

    def dense(q):
        query = embedder.embed([q])[0]
        # one BLAS thread: waking a pool right after the model's own threads costs more than it saves (as in faiss)
        with threadpool_limits(1, user_api="blas"):
            scores = matrix @ query
        top = np.argpartition(-scores, pool)[:pool]
        return top[np.argsort(-scores[top])]

    def sparse(q):
        docs, _ = lexical.retrieve([bm25_tokens(q) or ["_"]], k=pool, show_progress=False, n_threads=1)
        return docs[0]

    def rrf(q):
        fused: dict[int, float] = {}
        for ranking in (dense(q), sparse(q)):
            for rank, doc in enumerate(ranking):
                fused[int(doc)] = fused.get(int(doc), 0.0) + 1 / (60 + rank)
        return sorted(fused, key=fused.get, reverse=True)[:k]

    out = []
    for name, fn in (
        ("baseline: numpy brute-force dense", dense),
        ("baseline: bm25s", sparse),
        ("baseline: RRF(numpy, bm25s)", rrf),
    ):
        for q in questions[:10]:
            fn(q)
        ms = []
        for q in questions:
            t = time.perf_counter()
            fn(q)
            ms.append((time.perf_counter() - t) * 1000)
        out.append((size, name, *percentiles(ms), ""))
    return out


if __name__ == "__main__":
    main()
