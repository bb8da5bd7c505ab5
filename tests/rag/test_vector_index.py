"""The FAISS index types on clustered vectors like an embedding model's: each approximate one against exact search,
filtered, saved and loaded; ivfpq (IVF + 4-bit PQ, re-ranked) also below the size it needs to train."""

from __future__ import annotations

import numpy as np
import pytest

from rag.store.vector_index import IVFPQ_MIN_VECTORS, FaissVectorIndex

DIM = 64


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 50), DIM))
    vectors = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.35, (n, DIM))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(index: FaissVectorIndex, exact: FaissVectorIndex, queries: np.ndarray) -> float:
    _, found = index.search(queries, 10)
    _, truth = exact.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_approximate_indexes_find_what_exact_search_finds_filtered_and_after_loading(kind, tmp_path):
    n = 20_000
    vectors, ids = clustered(n), np.arange(1, n + 1, dtype=np.int64)
    queries = clustered(100, seed=1)
    exact = FaissVectorIndex.build("flat", DIM, ids, vectors)
    index = FaissVectorIndex.build(kind, DIM, ids, vectors)
    assert index.size == n and not index.updatable
    assert recall_at_10(index, exact, queries) >= 0.9

    allowed = ids[ids % 7 == 0]
    _, found = index.search(queries, 10, allowed_ids=allowed)
    assert (found >= 0).all() and set(found.ravel()) <= set(allowed.tolist())

    index.save(tmp_path / "index.faiss")
    loaded = FaissVectorIndex.load(tmp_path / "index.faiss", kind)
    assert np.array_equal(loaded.search(queries, 10)[1], index.search(queries, 10)[1])
    assert np.array_equal(loaded.search(queries, 10, allowed)[1], found)


def test_ivfpq_takes_far_less_memory_than_the_vectors_it_indexes(tmp_path):
    n = 20_000
    index = FaissVectorIndex.build("ivfpq", DIM, np.arange(n, dtype=np.int64), clustered(n))
    index.save(tmp_path / "ivfpq.faiss")
    raw = n * DIM * 4
    # 4-bit codes (DIM/8 bytes), float16 re-ranking vectors (DIM*2 bytes) and the ids: about 60% of float32 here
    assert (tmp_path / "ivfpq.faiss").stat().st_size < 0.7 * raw


def test_a_small_ivfpq_index_is_exact_until_it_can_be_trained():
    n = IVFPQ_MIN_VECTORS - 1
    vectors, ids = clustered(n), np.arange(n, dtype=np.int64)
    queries = clustered(20, seed=2)
    small = FaissVectorIndex.build("ivfpq", DIM, ids, vectors)
    exact = FaissVectorIndex.build("flat", DIM, ids, vectors)
    assert recall_at_10(small, exact, queries) == 1.0
    _, found = small.search(queries, 5, allowed_ids=ids[:100])
    assert set(found.ravel()) <= set(range(100))
    empty = FaissVectorIndex.build("ivfpq", DIM, np.zeros(0, np.int64), np.zeros((0, DIM), np.float32))
    assert empty.size == 0 and empty.search(queries[:1], 5)[1].shape == (1, 0)
