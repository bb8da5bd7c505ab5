"""Vector indexes at 1M chunks: memory, build time, single-query latency and recall@10 of FAISS HNSW, FAISS IVF-PQ
and pgvector HNSW, against exact search (FAISS flat) and a numpy brute-force baseline measured in the same run.

    python benchmarks/scale.py [--size 1000000] [--queries 200] [--sigma 0.03] [--ingest-passages 1000]

Then, in the same run, ingest throughput of the local pipeline against `rag ingest --ray` on a local Ray cluster of
1 and 2 workers (benchmarks/ray_ingest.py).

Vectors: the real passages of the shared corpora (as in benchmarks/retrieval.py), embedded once with the real model,
repeated to the size with gaussian noise of `--sigma` per dimension and renormalised. At 0.03 a copy keeps cosine
~0.86 with its passage and ~0.74 with another copy of it, about as close as a real passage and its nearest real
neighbour (the run prints both), so a question's top 10 is a dense neighbourhood of near-duplicates whose scores
differ by fractions of a thousandth: recall that means something, not a coin toss between identical vectors.
Queries: real questions of the same corpora, spread evenly over them, embedded with the model. Latency is one query
at a time on one thread, as a server answers, without embedding the question, after a warm-up with other questions.
Memory: a FAISS index's serialised bytes (`write_index`); pgvector's `pg_relation_size` of its HNSW index (the table,
which holds the vectors again, is noted apart). recall@10: overlap with FAISS flat's exact top 10.
FAISS flat and HNSW are the product's `FaissVectorIndex` with its default settings. IVF-PQ is built here from faiss
factory strings (`ivfpq_configs`: 4-bit fast-scan PQ whose candidates `IndexRefine` re-ranks on float16 vectors, at
k_factor 32 and 64, which the product's `ivfpq` index type then adopted with k_factor 64; and a half-memory variant
re-ranking on 8-bit ones, not offered), at the product's nprobe.
pgvector: a throwaway PostgreSQL started by this script (tests/postgres.py), restarted once with shared buffers big
enough for the index as a deployment would set them, loaded with binary COPY, indexed by one CREATE INDEX (at most
one parallel worker besides the leader: 2 cores), searched through the product's `PgVectorIndex.search` (SQL round trip
included) and stopped at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # a site-packages module named `benchmarks` shadows this folder

from retrieval import real_texts  # noqa: E402

from rag.core.settings import Settings  # noqa: E402
from rag.store.embedders import SentenceTransformerEmbedder  # noqa: E402
from rag.store.postgres import PgVectorIndex, PostgresChunkRows, PostgresStore  # noqa: E402
from rag.store.vector_index import FaissVectorIndex  # noqa: E402

K = 10
WARMUP = 20
MAX_THREADS = faiss.omp_get_max_threads()
MEMORY_GOAL, RECALL_GOAL = 10**9, 0.95  # IVF-PQ: at most 1 GB (10^9 bytes, stricter than 1 GiB) at recall@10 >= 0.95
KB_ID = "scale-benchmark"


@dataclass
class Row:
    name: str
    memory: int  # bytes
    build_s: float
    ms: list[float]  # one per query
    recall: float
    note: str = ""


@dataclass
class IvfPqConfig:
    """IVF with 4-bit fast-scan PQ codes, its candidates re-ranked (`IndexRefine`) on scalar-quantised vectors;
    `k_factor` * k candidates are re-ranked. `factory` is what faiss.index_factory takes."""

    nlist: int
    pq_m: int
    refine: str
    nprobe: int
    k_factors: tuple[int, ...]  # the last one is the configuration measured against the goal

    @property
    def factory(self) -> str:
        return f"IDMap2,IVF{self.nlist},PQ{self.pq_m}x4fs,Refine({self.refine})"

    @property
    def label(self) -> str:
        return self.factory.removeprefix("IDMap2,")


# ---- data ------------------------------------------------------------------------------------------------
def spread(items: list[str], n: int) -> list[str]:
    """n items evenly spaced over the list (every corpus contributes), repeating it when it is shorter."""
    return [items[i * len(items) // n % len(items)] for i in range(n)] if n <= len(items) else (items * n)[:n]


def perturbed(base: np.ndarray, size: int, sigma: float, seed: int = 7) -> np.ndarray:
    """`size` unit vectors: base vectors in turn, each with N(0, sigma) noise per dimension, renormalised."""
    rng = np.random.default_rng(seed)
    out = np.empty((size, base.shape[1]), np.float32)
    for start in range(0, size, 65_536):
        stop = min(size, start + 65_536)
        block = base[np.arange(start, stop) % len(base)] + sigma * rng.standard_normal(
            (stop - start, base.shape[1]), dtype=np.float32
        )
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def neighbourhood(base: np.ndarray, vectors: np.ndarray) -> str:
    """Real passages' nearest-neighbour cosine next to the copies' own similarity, to judge the noise level."""
    sims = base @ base.T
    np.fill_diagonal(sims, -1.0)
    nn = np.percentile(sims.max(axis=1), [50, 90])
    n = min(2000, len(vectors) - len(base))
    to_base = np.einsum("ij,ij->i", vectors[:n], base[np.arange(n) % len(base)])
    copies = np.einsum("ij,ij->i", vectors[:n], vectors[len(base) : len(base) + n])
    return (
        f"real passages' nearest real neighbour: cosine median {nn[0]:.2f}, p90 {nn[1]:.2f}; "
        f"a copy to its passage {to_base.mean():.2f}, to another copy {copies.mean():.2f}"
    )


# ---- measuring -------------------------------------------------------------------------------------------
def serialized_bytes(index: faiss.Index) -> int:
    """Bytes `write_index` produces, counted without holding a copy."""
    total = 0

    def count(chunk: bytes) -> int:
        nonlocal total
        total += len(chunk)
        return len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))  # type: ignore[attr-defined]  # missing from faiss's stub
    return total


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def timed(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, warmup: np.ndarray
) -> tuple[list[float], list[np.ndarray]]:
    """Milliseconds per query, one query at a time, and the ids each found; the warm-up queries run first."""
    for query in warmup:
        search(query[None, :])
    ms, found = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(search(query[None, :]))
        ms.append((time.perf_counter() - started) * 1000)
    return ms, found


def first_ids(index: FaissVectorIndex | PgVectorIndex) -> Callable[[np.ndarray], np.ndarray]:
    """The product's search of one query, as ids."""
    return lambda query: index.search(query, K)[1][0]


def recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f.tolist()) & set(t[:K].tolist())) / K for f, t in zip(found, truth, strict=True)]))


@contextmanager
def built(label: str) -> Iterator[dict[str, float]]:
    """Build time and RSS growth of the block, with every faiss thread (a single-query search leaves it at one)."""
    print(f"building {label} ...", flush=True)
    faiss.omp_set_num_threads(MAX_THREADS)
    before, started = rss_bytes(), time.perf_counter()
    measured: dict[str, float] = {}
    yield measured
    measured.update(build_s=time.perf_counter() - started, rss=rss_bytes() - before)
    print(f"  {measured['build_s']:.0f}s", flush=True)


# ---- FAISS -----------------------------------------------------------------------------------------------
def exact(
    ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, warmup: np.ndarray
) -> tuple[Row, np.ndarray, np.ndarray]:
    """FAISS flat (the product's exact index): its row, the exact top K+1 ids and scores of every query."""
    with built("FAISS flat") as m:
        index = FaissVectorIndex.build("flat", vectors.shape[1], ids, vectors)
    scores, truth = index.search(queries, K + 1)
    ms, found = timed(first_ids(index), queries, warmup)
    row = Row(
        "FAISS flat (exact reference)",
        serialized_bytes(index.index),
        m["build_s"],
        ms,
        recall(found, truth),
        f"RSS +{m['rss'] / 1e6:.0f} MB",
    )
    return row, truth, scores


def numpy_baseline(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, warmup: np.ndarray, truth) -> Row:
    """Brute-force cosine in numpy on one BLAS thread, as benchmarks/retrieval.py's dense baseline."""
    from threadpoolctl import threadpool_limits

    def search(query: np.ndarray) -> np.ndarray:
        with threadpool_limits(1, user_api="blas"):
            scores = vectors @ query[0]
        top = np.argpartition(-scores, K)[:K]
        return ids[top[np.argsort(-scores[top])]]

    ms, found = timed(search, queries, warmup)
    return Row("baseline: numpy brute force", vectors.nbytes, 0.0, ms, recall(found, truth), "same matrix, no index")


def faiss_hnsw(
    ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, warmup: np.ndarray, truth, settings: Settings
) -> list[Row]:
    with built("FAISS HNSW") as m:
        index = FaissVectorIndex.build(
            "hnsw", vectors.shape[1], ids, vectors, hnsw_m=settings.hnsw_m, ef_search=settings.hnsw_ef_search
        )
    memory, rows = serialized_bytes(index.index), []
    for ef in (settings.hnsw_ef_search, 4 * settings.hnsw_ef_search):
        index.ef_search = ef
        ms, found = timed(first_ids(index), queries, warmup)
        note = f"M={settings.hnsw_m} efConstruction={max(40, 2 * settings.hnsw_m)}; RSS +{m['rss'] / 1e6:.0f} MB"
        rows.append(Row(f"FAISS HNSW ef_search={ef}", memory, m["build_s"], ms, recall(found, truth), note))
    return rows


def ivfpq_configs(size: int, nprobe: int) -> tuple[IvfPqConfig, IvfPqConfig]:
    """The chosen configuration and a half-memory alternative. nlist by the product's IVF rule (4 * sqrt(n)).
    Chosen: 96 sub-quantizers of 4 bits (48 bytes a vector; fast-scan builds and scans far faster than 8-bit PQ of
    the same size, for the same recall) re-ranked on float16 vectors, which are precise enough to order
    near-duplicates; alternative: 192 sub-quantizers re-ranked on 8-bit vectors, whose rounding caps the recall."""
    nlist = max(1, min(int(4 * math.sqrt(size)), size // 39))
    return (
        IvfPqConfig(nlist, pq_m=96, refine="SQfp16", nprobe=nprobe, k_factors=(1, 32, 64)),
        IvfPqConfig(nlist, pq_m=192, refine="SQ8", nprobe=nprobe, k_factors=(32, 64)),
    )


def ivfpq_search(index: faiss.Index, nprobe: int, k_factor: int) -> Callable[[np.ndarray], np.ndarray]:
    ivf = faiss.SearchParametersIVF(nprobe=nprobe)  # type: ignore[call-arg]  # faiss stub lacks kwargs
    params = faiss.IndexRefineSearchParameters(k_factor=k_factor, base_index_params=ivf)  # type: ignore[call-arg]  # faiss stub lacks kwargs

    return lambda query: index.search(query, K, params=params)[1][0]


def without_refine(index: faiss.Index) -> faiss.Index:
    """The IVF-PQ inside IDMap2(IndexRefine(IVF-PQ, refine vectors))."""
    id_map: Any = faiss.downcast_index(index)
    refine: Any = faiss.downcast_index(id_map.index)
    return refine.base_index


def faiss_ivfpq(
    ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, warmup: np.ndarray, truth, config: IvfPqConfig
) -> list[Row]:
    rng = np.random.default_rng(11)
    with built(f"FAISS {config.label}") as m:
        index = faiss.index_factory(vectors.shape[1], config.factory, faiss.METRIC_INNER_PRODUCT)
        # 64 points per list is above faiss's floor of 39 and keeps k-means to minutes on 2 cores
        index.train(vectors[np.sort(rng.choice(len(vectors), min(len(vectors), 64 * config.nlist), replace=False))])
        index.add_with_ids(vectors, ids)
    memory = serialized_bytes(index)
    pq_only = serialized_bytes(without_refine(index))
    faiss.omp_set_num_threads(1)
    rows = []
    for k_factor in config.k_factors:
        ms, found = timed(ivfpq_search(index, config.nprobe, k_factor), queries, warmup)
        if k_factor == 1:
            name, size, note = config.label.split(",Refine")[0], pq_only, "no re-ranking: the IVF-PQ part alone"
        else:
            name, size, note = f"{config.label} k_factor={k_factor}", memory, f"RSS +{m['rss'] / 1e6:.0f} MB"
        rows.append(
            Row(f"FAISS {name}", size, m["build_s"], ms, recall(found, truth), f"nprobe={config.nprobe}; {note}")
        )
    return rows


# ---- pgvector --------------------------------------------------------------------------------------------
def copy_payload(ids: np.ndarray, vectors: np.ndarray) -> bytes:
    """Rows (id BIGINT, embedding vector(d)) in PostgreSQL's binary COPY format, pgvector's binary vector included."""
    d = vectors.shape[1]
    dtype = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vec", ">f4", (d,)),
        ]
    )
    rows = np.empty(len(ids), dtype)
    rows["fields"], rows["id_len"], rows["id"] = 2, 8, ids
    rows["vec_len"], rows["dim"], rows["unused"], rows["vec"] = 4 + 4 * d, d, 0, vectors
    return rows.tobytes()


COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
COPY_TRAILER = b"\xff\xff"


def libpq_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def restart_with(url: str, settings: dict[str, str]) -> None:
    """Apply server settings that need a restart (shared_buffers), restarting the server as its own user."""
    import psycopg

    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        for name, value in settings.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        sql = "SELECT current_setting('data_directory'), setting FROM pg_config WHERE name = 'BINDIR'"
        data_dir, bin_dir = (str(value) for value in conn.execute(sql).fetchall()[0])
    owner = os.stat(data_dir)
    as_owner: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses root: tests/postgres.py runs it as an unprivileged user
        as_owner = {"user": owner.st_uid, "group": owner.st_gid, "extra_groups": []}
    log = str(Path(data_dir).parent / "restart.log")
    cmd = [f"{bin_dir}/pg_ctl", "-D", data_dir, "-l", log, "-m", "fast", "-w", "-t", "120", "restart"]
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, timeout=180, **as_owner)


@dataclass
class PgLoad:
    load_s: float
    build_s: float
    index_bytes: int
    table_bytes: int
    notices: list[str]


def load_pgvector(url: str, table: str, ids: np.ndarray, vectors: np.ndarray, args: argparse.Namespace) -> PgLoad:
    """The chunks table with only the columns search reads, binary COPY, the HNSW index as the product creates it;
    times, sizes and the server's notices."""
    import psycopg

    notices: list[str] = []
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
        conn.execute(f"CREATE TABLE {table} (id BIGINT NOT NULL, embedding vector({vectors.shape[1]}) NOT NULL)")
        print(f"loading pgvector ({len(ids)} rows, binary COPY) ...", flush=True)
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY {table} (id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for start in range(0, len(ids), 50_000):
                copy.write(copy_payload(ids[start : start + 50_000], vectors[start : start + 50_000]))
            copy.write(COPY_TRAILER)
        load_s = time.perf_counter() - started
        conn.execute(f"SET maintenance_work_mem = '{args.pg_maintenance_work_mem}'")
        conn.execute("SET max_parallel_maintenance_workers = 1")  # the leader plus one worker: 2 cores
        print(f"  {load_s:.0f}s; building pgvector HNSW ...", flush=True)
        started = time.perf_counter()
        conn.execute(
            f"CREATE INDEX {table}_hnsw ON {table} USING hnsw (embedding vector_ip_ops) "
            f"WITH (m = {args.pg_m}, ef_construction = {args.pg_ef_construction})"
        )
        build_s = time.perf_counter() - started
        print(f"  {build_s:.0f}s", flush=True)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        conn.execute(f"SELECT pg_prewarm('{table}_hnsw')")  # a serving database has its index in memory
        sizes = conn.execute(f"SELECT pg_relation_size('{table}_hnsw'), pg_table_size('{table}')").fetchone()
    assert sizes is not None
    return PgLoad(load_s, build_s, int(sizes[0]), int(sizes[1]), notices)


def pgvector(
    ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, warmup: np.ndarray, truth, settings: Settings, args
) -> list[Row]:
    from tests.postgres import postgres_url

    with postgres_url() as url:
        restart_with(url, {"shared_buffers": args.pg_shared_buffers})
        store = PostgresStore(url)  # also creates the vector extension
        try:
            with store.connect() as conn:
                shared_buffers = conn.exec_driver_sql("SHOW shared_buffers").scalar()
            chunk_rows = store.backend(KB_ID).connect(create=True)  # registered as the product does: rag_chunks_<n>
            assert isinstance(chunk_rows, PostgresChunkRows)
            loaded = load_pgvector(url, chunk_rows.chunks_table, ids, vectors, args)
            note = "; ".join(
                [
                    f"m={args.pg_m} ef_construction={args.pg_ef_construction}",
                    f"shared_buffers {shared_buffers}",
                    f"table {loaded.table_bytes / 1e6:.0f} MB more",
                    f"COPY {loaded.load_s:.0f}s",
                    *loaded.notices,
                ]
            )
            rows = []
            for ef in (settings.hnsw_ef_search, 4 * settings.hnsw_ef_search):
                index = PgVectorIndex(chunk_rows, vectors.shape[1], ef_search=ef)
                ms, found = timed(first_ids(index), queries, warmup)
                rows.append(
                    Row(
                        f"pgvector HNSW ef_search={ef}",
                        loaded.index_bytes,
                        loaded.build_s,
                        ms,
                        recall(found, truth),
                        note,
                    )
                )
        finally:
            store.close()
    return rows


# ---- report ----------------------------------------------------------------------------------------------
def print_table(rows: list[Row], size: int, queries: int) -> None:
    print(f"\n{size} chunks, {queries} questions, recall@{K} against FAISS flat; latency one query at a time")
    print(f"{'index':<54} {'memory MB':>9} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall':>7}  note")
    for r in rows:
        p50, p95 = np.percentile(r.ms, [50, 95])
        print(
            f"{r.name:<54} {r.memory / 1e6:>9.0f} {r.build_s:>8.0f} {p50:>7.2f} {p95:>7.2f} {r.recall:>7.3f}  {r.note}"
        )


def print_goal(rows: list[Row], configs: tuple[IvfPqConfig, ...]) -> None:
    for config in configs:
        name = f"FAISS {config.label} k_factor={config.k_factors[-1]}"
        row = next(r for r in rows if r.name == name)
        meets = row.memory <= MEMORY_GOAL and row.recall >= RECALL_GOAL
        print(
            f"IVF-PQ goal (<= 1 GB at recall@{K} >= {RECALL_GOAL}): {config.factory} nprobe={config.nprobe} "
            f"k_factor={config.k_factors[-1]}: {row.memory / 1e6:.0f} MB at recall {row.recall:.3f} - "
            f"{'meets' if meets else 'MISSES'} it"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--base", type=int, default=4000, help="distinct real passages to embed (at most)")
    parser.add_argument("--sigma", type=float, default=0.03, help="noise per dimension of each copy")
    parser.add_argument("--pg-m", type=int, default=16)
    parser.add_argument("--pg-ef-construction", type=int, default=64)
    parser.add_argument("--pg-maintenance-work-mem", default="3GB")
    parser.add_argument("--pg-shared-buffers", default="3GB")
    parser.add_argument(
        "--ingest-passages", type=int, default=1000, help="ingest throughput, local vs Ray, on N files (0: skip)"
    )
    args = parser.parse_args()
    started = time.perf_counter()

    settings = Settings(_env_file=None)
    embedder = SentenceTransformerEmbedder(settings.embedding_model)
    texts, questions = real_texts(args.base)
    asked = spread(questions, args.queries + WARMUP)
    base, embedded = embedder.embed(texts), embedder.embed(asked)
    queries, warmup = embedded[: args.queries], embedded[args.queries :]
    vectors = perturbed(base, args.size, args.sigma)
    ids = np.arange(1, args.size + 1, dtype=np.int64)  # chunk ids start at 1, as in the product
    print(f"{len(texts)} distinct passages, sigma {args.sigma}: {neighbourhood(base, vectors)}", flush=True)

    flat, truth, scores = exact(ids, vectors, queries, warmup)
    gap = np.median(scores[:, K - 1] - scores[:, K])
    print(f"exact top {K}: median score of the {K}th {np.median(scores[:, K - 1]):.3f}, next one {gap:.5f} below")
    rows = [numpy_baseline(ids, vectors, queries, warmup, truth), flat]
    rows += faiss_hnsw(ids, vectors, queries, warmup, truth, settings)
    configs = ivfpq_configs(args.size, settings.ivf_nprobe)
    for config in configs:
        rows += faiss_ivfpq(ids, vectors, queries, warmup, truth, config)
    rows += pgvector(ids, vectors, queries, warmup, truth, settings, args)

    print_table(rows, args.size, args.queries)
    print_goal(rows, configs)
    print(
        f"peak RSS of this process {peak_rss_bytes() / 1e9:.2f} GB (vectors alone {vectors.nbytes / 1e9:.2f} GB; "
        f"PostgreSQL runs apart with shared_buffers {args.pg_shared_buffers}, maintenance_work_mem "
        f"{args.pg_maintenance_work_mem}); total {(time.perf_counter() - started) / 60:.0f} min"
    )
    if args.ingest_passages:
        from ray_ingest import measure_and_print  # benchmarks/ray_ingest.py, on the path as `retrieval` is

        print("\ningest throughput: the local pipeline against Ray Data on a local cluster of 1 and 2 workers")
        measure_and_print(args.ingest_passages, (1, 2))


if __name__ == "__main__":
    main()
