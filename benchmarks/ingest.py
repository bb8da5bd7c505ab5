"""Ingest throughput: the full `rag ingest` pipeline against raw `model.encode` on the same chunks, same run.

    python benchmarks/ingest.py [--corpus FILE_OR_DIR ...] [--repeat 2]

Default corpus: the shared BEIR corpora beside the checkout (real text), else the demo `data/` folder.
The pipeline time covers loading, chunking, hashing, embedding, SQLite and FAISS writes and the atomic
commit; the raw baseline only encodes the pipeline's own chunk texts with the same model and batch size.
Both use one already-loaded model; the CLI row adds process start-up and model loading.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402


def default_corpus() -> list[Path]:
    shared = ROOT.parent / "shared" / "datasets"
    corpora = [shared / name / "corpus.jsonl" for name in ("rgb-en", "clapnq", "stackfaq")]
    found = [c for c in corpora if c.is_file()]
    return found or [ROOT / "data"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, nargs="+", default=None)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    corpus = args.corpus or default_corpus()

    settings = Settings(_env_file=None)
    started = time.perf_counter()
    embedder = SentenceTransformerEmbedder(settings.embedding_model, batch_size=settings.embedding_batch_size)
    load_s = time.perf_counter() - started
    embedder.embed(["warm-up sentence"] * 64)

    pipeline_s, raw_s = [], []
    texts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        for i in range(args.repeat):
            kb_dir = Path(tmp) / f"kb{i}"
            started = time.perf_counter()
            report = ingest(corpus, kb_dir, embedder, settings)
            pipeline_s.append(time.perf_counter() - started)
            if not texts:
                with KnowledgeBase.open(kb_dir) as kb:
                    texts = [c.embedding_text() for c in kb.all_chunks()]
                assert len(texts) == report.chunks_embedded
            started = time.perf_counter()
            embedder.model.encode(
                texts,
                batch_size=settings.embedding_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            raw_s.append(time.perf_counter() - started)

        rag = Path(sys.executable).with_name("rag")
        started = time.perf_counter()
        subprocess.run(
            [str(rag), "ingest", *map(str, corpus), "--kb", str(Path(tmp) / "cli"), "--no-progress"],
            check=True,
            capture_output=True,
        )
        cli_s = time.perf_counter() - started

    n = len(texts)
    raw, pipe = statistics.median(raw_s), statistics.median(pipeline_s)
    rows = [
        ("raw model.encode (baseline)", raw, n / raw, 1.0),
        ("ingest pipeline (in process)", pipe, n / pipe, raw / pipe),
        ("`rag ingest` CLI, incl. start-up", cli_s, n / cli_s, raw / cli_s),
    ]
    print(f"corpus: {', '.join(str(c) for c in corpus)}")
    print(
        f"chunks: {n}   model load: {load_s:.1f}s   runs: {args.repeat} (median)   raw runs: "
        + ", ".join(f"{s:.1f}s" for s in raw_s)
        + "   pipeline runs: "
        + ", ".join(f"{s:.1f}s" for s in pipeline_s)
    )
    print(f"{'method':<34} {'seconds':>8} {'chunks/s':>9} {'vs raw':>7}")
    for name, seconds, rate, ratio in rows:
        print(f"{name:<34} {seconds:>8.2f} {rate:>9.1f} {ratio:>7.2f}")
    target = 0.85
    verdict = "meets" if raw / pipe >= target else "MISSES"
    print(f"pipeline/raw throughput ratio {raw / pipe:.3f} {verdict} the target >= {target}")


if __name__ == "__main__":
    main()
