"""Vector indexes over chunk ids. `FaissVectorIndex` wraps exact inner product, HNSW or IVF.

Vectors are L2-normalized, so inner product is cosine similarity. The exact index is updated in place;
HNSW and IVF cannot delete cheaply and are rebuilt from the stored vectors on change.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Literal, Protocol

import faiss
import numpy as np

IndexType = Literal["flat", "hnsw", "ivf", "ivfpq"]
# ivfpq: an inverted file of 4-bit product-quantized codes (fast-scan) whose candidates are re-ranked on float16
# vectors - at 1M chunks 842 MB at recall@10 0.983 against 1.8 GB for HNSW (benchmarks/scale.py). Below this many
# chunks its training has too little data and an exact index serves instead (same kind name, same results).
IVFPQ_MIN_VECTORS = 4096
IVFPQ_K_FACTOR = 64  # candidates re-ranked per result: 32 gave recall 0.934 at 1M, 64 gave 0.983
_MAX_THREADS = faiss.omp_get_max_threads()


class VectorIndex(Protocol):
    """Vectors by chunk id; inner-product search, optionally restricted to allowed ids."""

    dimension: int

    @property
    def kind(self) -> str:
        """flat, hnsw or ivf (read-only, so an implementation may narrow it to a Literal)."""
        ...

    @property
    def size(self) -> int: ...

    @property
    def updatable(self) -> bool:
        """Whether removals are cheap; otherwise the knowledge base rebuilds it from stored vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: Iterable[int]) -> None: ...

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids), each of shape (len(queries), k); missing results have id -1."""
        ...


class FaissVectorIndex:
    def __init__(self, index: faiss.Index, kind: IndexType, *, ef_search: int = 128, nprobe: int = 16):
        self.index = index
        self.kind = kind
        self.dimension = index.d
        self.ef_search = ef_search
        self.nprobe = nprobe
        # an ivfpq index re-ranks with IndexRefine once it had enough vectors to train; an exact one before that
        self._refined = isinstance(faiss.downcast_index(_id_map(index).index), faiss.IndexRefine)

    @classmethod
    def build(
        cls,
        kind: IndexType,
        dimension: int,
        ids: np.ndarray,
        vectors: np.ndarray,
        *,
        hnsw_m: int = 32,
        ef_search: int = 128,
        nprobe: int = 16,
    ) -> FaissVectorIndex:
        base: faiss.Index
        if kind == "flat":
            base = faiss.IndexFlatIP(dimension)
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = max(40, 2 * hnsw_m)
            base = hnsw
        elif kind == "ivf":
            n = len(ids)
            quantizer = faiss.IndexFlatIP(dimension)
            base = faiss.IndexIVFFlat(quantizer, dimension, _nlist(n), faiss.METRIC_INNER_PRODUCT)
            if n:
                base.train(vectors)
        elif kind == "ivfpq":
            base = _ivfpq(dimension, vectors)
        else:
            raise ValueError(f"index type must be one of flat, hnsw, ivf, ivfpq. Currently, the index type is {kind!r}")
        index = cls(faiss.IndexIDMap2(base), kind, ef_search=ef_search, nprobe=nprobe)
        if len(ids):
            index.add(ids, vectors)
        return index

    @classmethod
    def load(cls, path: Path, kind: IndexType, *, ef_search: int = 128, nprobe: int = 16) -> FaissVectorIndex:
        return cls(faiss.read_index(str(path)), kind, ef_search=ef_search, nprobe=nprobe)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def updatable(self) -> bool:
        """Whether removals are cheap; otherwise callers rebuild from stored vectors."""
        return self.kind == "flat"

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: Iterable[int]) -> None:
        ids = np.fromiter(ids, dtype=np.int64)
        if len(ids):
            self.index.remove_ids(ids)  # type: ignore[arg-type]  # faiss stub: the wrapper also takes an id array

    def _params(self, selector: faiss.IDSelector | None) -> faiss.SearchParameters | None:
        # faiss's stubs (1.15) lack SearchParametersHNSW and the keyword constructor every SearchParameters* has
        if self.kind == "hnsw":
            return faiss.SearchParametersHNSW(efSearch=self.ef_search, sel=selector)  # type: ignore[attr-defined]  # missing from faiss's stub
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(nprobe=self.nprobe, sel=selector)  # type: ignore[call-arg]  # faiss stub lacks kwargs
        if self.kind == "ivfpq" and self._refined:
            if selector is not None:  # the IVF part sees positions inside the id map, not chunk ids
                selector = faiss.IDSelectorTranslated(_id_map(self.index).id_map, selector)  # type: ignore[arg-type]  # faiss stub: the wrapper takes the id map itself
            ivf = faiss.SearchParametersIVF(nprobe=self.nprobe, sel=selector)  # type: ignore[call-arg]  # faiss stub lacks kwargs
            return faiss.IndexRefineSearchParameters(k_factor=IVFPQ_K_FACTOR, base_index_params=ivf)  # type: ignore[call-arg]  # faiss stub lacks kwargs
        return faiss.SearchParameters(sel=selector) if selector is not None else None  # type: ignore[call-arg]  # faiss stub lacks kwargs

    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.size))
        if self.size == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        selector = None
        if allowed_ids is not None:
            if len(allowed_ids) == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            selector = faiss.IDSelectorBatch(np.asarray(allowed_ids, dtype=np.int64))
        params = self._params(selector)
        # One query gains nothing from OpenMP threads, and waking them right after the embedding model's own
        # thread pool ran costs milliseconds; batches (evaluation) still use every core. Per calling thread.
        faiss.omp_set_num_threads(1 if len(queries) == 1 else _MAX_THREADS)
        if params is None:
            return self.index.search(queries, k)
        return self.index.search(queries, k, params=params)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))


def _nlist(n: int) -> int:
    """Inverted lists for n vectors: sqrt(n)*4, the usual rule of thumb, with faiss's ~39 training points each."""
    return max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))


def _ivfpq(dimension: int, vectors: np.ndarray) -> faiss.Index:
    """IVF with 4-bit fast-scan PQ (4 dimensions per byte-half), re-ranked on float16 vectors; trained on up to 64
    vectors per list. Exact below IVFPQ_MIN_VECTORS."""
    n = len(vectors)
    if n < IVFPQ_MIN_VECTORS:
        return faiss.IndexFlatIP(dimension)
    if dimension % 4:
        raise ValueError(f"index type ivfpq needs a dimension divisible by 4, not {dimension} - use hnsw or ivf")
    nlist = _nlist(n)
    index = faiss.index_factory(
        dimension, f"IVF{nlist},PQ{dimension // 4}x4fs,Refine(SQfp16)", faiss.METRIC_INNER_PRODUCT
    )
    sample = vectors if n <= 64 * nlist else vectors[np.random.default_rng(0).choice(n, 64 * nlist, replace=False)]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    return index


def _id_map(index: faiss.Index) -> faiss.IndexIDMap2:
    """The id map every index here is wrapped in (chunk ids over positions)."""
    mapped = faiss.downcast_index(index)
    if not isinstance(mapped, faiss.IndexIDMap2):
        raise TypeError(f"expected a faiss IndexIDMap2, not {type(mapped).__name__}")
    return mapped
