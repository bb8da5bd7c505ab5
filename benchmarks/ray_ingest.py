"""Ingest throughput on a Ray cluster (Ray Data) against the local pipeline, on the same corpus in the same run.

    python benchmarks/ray_ingest.py [--passages 1000] [--workers 1 2]

Corpus: passages of the shared BEIR corpora beside the checkout (real text; the datasets taken in turn), one
text file each, else the demo `data/` folder. Rows: the local pipeline (this process: one model, torch on every
core), then Ray on a cluster of N worker nodes on this machine with one CPU each (`ray.cluster_utils.Cluster`:
a raylet per node, as on N machines) and one embedding actor per node. Every row ingests into a new knowledge
base, so every chunk is embedded. The time covers loading, chunking, embedding and the atomic commit; for Ray
also connecting, scheduling, and each actor loading the model (as every `rag ingest --ray` does), not starting
the cluster (shown apart). The fusion calibration, the same step in this process for every row, is left out.
Each Ray knowledge base is checked against the local one: same chunks, and the largest vector difference.

`ray_ingest_table(...)` returns the rows, for other benchmarks to call.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.pipeline import ingest  # noqa: E402
from rag.core.settings import Settings  # noqa: E402
from rag.store.embedders import Embedder, SentenceTransformerEmbedder  # noqa: E402
from rag.store.knowledge_base import KnowledgeBase  # noqa: E402

DATASETS = ROOT.parent / "shared" / "datasets"
_MIB = 1024 * 1024


def write_corpus(folder: Path, limit: int) -> Path:
    """Up to `limit` passages of the shared corpora as text files under `folder` (the datasets taken in turn);
    the demo documents when the corpora are not there."""
    records = []
    for name in ("rgb-en", "clapnq", "stackfaq", "rgb-zh"):
        corpus = DATASETS / name / "corpus.jsonl"
        if corpus.is_file():
            lines = corpus.read_text(encoding="utf-8").splitlines()
            records.append([(name, json.loads(line)) for line in lines])
    if not records:
        return ROOT / "data"
    taken = [row for turn in zip(*_padded(records), strict=True) for row in turn if row is not None][:limit]
    for i, (name, record) in enumerate(taken):
        path = folder / name / f"{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        title = record.get("title") or ""
        path.write_text(f"{title}\n\n{record['text']}" if title else record["text"], encoding="utf-8")
    return folder


def _padded(lists: list[list]) -> list[list]:
    longest = max(len(items) for items in lists)
    return [items + [None] * (longest - len(items)) for items in lists]


def ray_ingest_table(
    corpus: Path,
    workers: Sequence[int] = (1, 2),
    *,
    settings: Settings | None = None,
    embedder: Embedder | None = None,
) -> list[dict]:
    """One row per method: local pipeline, then Ray on a local cluster of each count of `workers` (one CPU each):
    chunks, wall seconds, chunks/s, seconds to start the cluster, and whether its knowledge base equals the local
    one (same chunks, largest vector difference). Every Ray process is stopped before it returns."""
    settings = settings or Settings(hybrid_adaptive=False, _env_file=None)
    embedder = embedder or SentenceTransformerEmbedder(
        settings.embedding_model, batch_size=settings.embedding_batch_size
    )
    embedder.embed(["warm-up"] * 8)
    rows = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-ray-") as tmp:
        local_kb = Path(tmp) / "local"
        started = time.perf_counter()
        report = ingest([corpus], local_kb, embedder, settings)
        rows.append(_row("local pipeline (in process)", None, report.chunks_embedded, started, None))
        rows[-1].update(same_chunks=True, max_vector_diff=0.0)
        for count in workers:
            kb = Path(tmp) / f"ray-{count}"
            started = time.perf_counter()
            with _local_cluster(count) as address:
                up = time.perf_counter() - started
                started = time.perf_counter()
                report = ingest([corpus], kb, embedder, settings, ray_address=address)
                rows.append(_row("Ray Data, local cluster", count, report.chunks_embedded, started, up))
            rows[-1].update(_compare(local_kb, kb))
    return rows


def _row(method: str, workers: int | None, chunks: int, started: float, up: float | None) -> dict:
    seconds = time.perf_counter() - started
    return {
        "method": method,
        "workers": workers,
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 1),
        "cluster_start_s": None if up is None else round(up, 1),
    }


@contextlib.contextmanager
def _local_cluster(nodes: int) -> Iterator[str]:
    """The address of a Ray cluster of `nodes` nodes with one CPU each on this machine; every process stopped
    after."""
    from ray.cluster_utils import Cluster

    node: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 250 * _MIB}
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(**node)
        yield str(cluster.address)
    finally:
        cluster.shutdown()


def _compare(local: Path, distributed: Path) -> dict:
    """Whether the two knowledge bases hold the same chunks (ids, documents, texts), and the largest difference
    between their vectors' components."""
    with KnowledgeBase.open(local) as a, KnowledgeBase.open(distributed) as b:
        chunks = a.all_chunks()
        if b.all_chunks() != chunks:
            return {"same_chunks": False, "max_vector_diff": None}
        ids = [c.id for c in chunks if c.id is not None]  # stored chunks all have one
        return {"same_chunks": True, "max_vector_diff": float(np.abs(a.vectors(ids) - b.vectors(ids)).max())}


def measure_and_print(passages: int, workers: Sequence[int]) -> None:
    """Write the corpus, run `ray_ingest_table` on it and print the table."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="rag-bench-corpus-") as tmp:
        corpus = write_corpus(Path(tmp) / "corpus", passages)
        files = sum(1 for p in corpus.rglob("*") if p.is_file())
        rows = ray_ingest_table(corpus, workers)
    local = rows[0]["seconds"]
    print(f"corpus: {files} files, {rows[0]['chunks']} chunks   machine: {os.cpu_count()} CPUs")
    print(
        f"{'method':<30} {'workers':>7} {'seconds':>8} {'chunks/s':>9} {'vs local':>8} {'cluster up':>10} "
        f"{'same chunks':>11} {'max |dv|':>9}"
    )
    for row in rows:
        shown = "-" if row["workers"] is None else str(row["workers"])
        up = "-" if row["cluster_start_s"] is None else f"{row['cluster_start_s']:.1f}s"
        diff = "-" if row["max_vector_diff"] is None else f"{row['max_vector_diff']:.1e}"
        print(
            f"{row['method']:<30} {shown:>7} {row['seconds']:>8.2f} {row['chunks_per_s']:>9.1f} "
            f"{local / row['seconds']:>8.2f} {up:>10} {'yes' if row['same_chunks'] else 'NO':>11} {diff:>9}"
        )
    print(f"load average before the run (1, 5, 15 min; other work on this machine): {load}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=1000, help="passages (files) in the corpus")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker nodes, one CPU each")
    args = parser.parse_args()
    measure_and_print(args.passages, args.workers)


if __name__ == "__main__":
    main()
