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

IndexType = Literal["flat", "hnsw", "ivf"]
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
            # ~39 training points per list is faiss's floor; sqrt(n)*4 is the usual rule of thumb.
            nlist = max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39))
            quantizer = faiss.IndexFlatIP(dimension)
            base = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
            if n:
                base.train(vectors)
        else:
            raise ValueError(f"index type must be one of flat, hnsw, ivf. Currently, the index type is {kind!r}")
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
