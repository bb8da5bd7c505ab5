"""BM25 over chunk ids, as a sparse term matrix (scipy). Rebuilt from stored tokens on every change,
which costs far less than the embedding it accompanies; saved per generation next to the FAISS index."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import sparse


class LexicalIndex(Protocol):
    """Term-match scores by chunk id; rebuilt from the stored tokens on every change."""

    @property
    def size(self) -> int: ...

    def query_scores(self, query_tokens: Sequence[str]) -> np.ndarray: ...

    def search(
        self,
        query_tokens: Sequence[str],
        k: int,
        allowed_ids: np.ndarray | None = None,
        scores: np.ndarray | None = None,
    ) -> list[tuple[int, float]]: ...

    def scores_for(
        self, query_tokens: Sequence[str], ids: Sequence[int], scores: np.ndarray | None = None
    ) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...


class BM25Index:
    """Okapi BM25 as Lucene 8+ and `bm25s` (method "lucene") score it, k1=1.2 (chosen leave-one-dataset-out
    against bm25s: benchmarks/bm25_ablation.py), b=0.75; scores are precomputed per (chunk, term).

    Given the same tokens, the scores equal `bm25s.BM25().get_scores` (tests/rag/test_retrieval.py checks it).
    We keep this small scipy implementation rather than bm25s's own index because the knowledge base needs
    what bm25s does not offer as API: one-file persistence per generation, filters (allowed ids), and scores of
    arbitrary candidate ids for fusion; a query costs about the same (one CSC column slice and a sum).
    """

    def __init__(self, ids: np.ndarray, matrix: sparse.csc_matrix, vocabulary: dict[str, int]):
        self.ids = ids  # row -> chunk id, ascending
        self.matrix = matrix  # rows: chunks, columns: terms, values: BM25 term weights
        self.vocabulary = vocabulary

    @classmethod
    def build(
        cls, ids: Iterable[int], token_lists: Iterable[Sequence[str]], k1: float = 1.2, b: float = 0.75
    ) -> BM25Index:
        ids = np.fromiter(ids, dtype=np.int64)
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        lengths: list[int] = []
        for row, tokens in enumerate(token_lists):
            counts: dict[int, int] = {}
            for token in tokens:
                col = vocabulary.setdefault(token, len(vocabulary))
                counts[col] = counts.get(col, 0) + 1
            rows.extend([row] * len(counts))
            cols.extend(counts.keys())
            tfs.extend(counts.values())
            lengths.append(len(tokens))
        n = len(ids)
        if len(lengths) != n:
            raise ValueError(f"got {n} ids but {len(lengths)} token lists")
        rows_a, cols_a = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        tf = np.asarray(tfs, np.float32)
        doc_len = np.asarray(lengths, np.float32)
        avg = float(doc_len.mean()) if n and doc_len.mean() > 0 else 1.0
        df = np.bincount(cols_a, minlength=len(vocabulary)).astype(np.float32)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        weights = idf[cols_a] * tf / (tf + k1 * (1 - b + b * doc_len[rows_a] / avg))
        matrix = sparse.csc_matrix((weights.astype(np.float32), (rows_a, cols_a)), shape=(n, len(vocabulary)))
        order = np.argsort(ids, kind="stable")
        return cls(ids[order], matrix[order], vocabulary)

    @property
    def size(self) -> int:
        return len(self.ids)

    def query_scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """BM25 score of every indexed chunk (row order of `ids`)."""
        cols = sorted({self.vocabulary[t] for t in query_tokens if t in self.vocabulary})
        if not cols or not self.size:
            return np.zeros(self.size, np.float32)
        return np.asarray(self.matrix[:, cols].sum(axis=1)).ravel()

    def search(
        self,
        query_tokens: Sequence[str],
        k: int,
        allowed_ids: np.ndarray | None = None,
        scores: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """Up to k (chunk id, score) with a positive score, best first (`scores`: from query_scores, if at hand)."""
        scores = self.query_scores(query_tokens) if scores is None else scores
        if allowed_ids is not None:
            mask = np.zeros(self.size, bool)
            rows = np.searchsorted(self.ids, allowed_ids)
            rows = (
                rows[(rows < self.size) & (self.ids[np.minimum(rows, self.size - 1)] == allowed_ids)]
                if self.size
                else rows[:0]
            )
            mask[rows] = True
            scores = np.where(mask, scores, 0)
        positive = np.flatnonzero(scores > 0)
        if not len(positive):
            return []
        return [(int(self.ids[r]), float(scores[r])) for r in _top_rows(scores, positive, k)]

    def scores_for(
        self, query_tokens: Sequence[str], ids: Sequence[int], scores: np.ndarray | None = None
    ) -> np.ndarray:
        """BM25 scores of given chunk ids (0 for ids not indexed)."""
        ids_a = np.asarray(ids, dtype=np.int64)
        out = np.zeros(len(ids_a), np.float32)
        if not self.size or not len(ids_a):
            return out
        scores = self.query_scores(query_tokens) if scores is None else scores
        rows = np.searchsorted(self.ids, ids_a)
        found = (rows < self.size) & (self.ids[np.minimum(rows, self.size - 1)] == ids_a)
        out[found] = scores[rows[found]]
        return out

    def save(self, path: Path) -> None:
        m = self.matrix
        terms: list[str | None] = [None] * len(self.vocabulary)
        for term, col in self.vocabulary.items():
            terms[col] = term
        with open(path, "wb") as handle:
            np.savez(
                handle,
                ids=self.ids,
                data=m.data,
                indices=m.indices,
                indptr=m.indptr,
                shape=np.asarray(m.shape),
                terms=np.frombuffer(json.dumps(terms, ensure_ascii=False).encode(), np.uint8),
            )

    @classmethod
    def load(cls, path: Path) -> BM25Index:
        with np.load(path) as z:
            matrix = sparse.csc_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            terms = json.loads(z["terms"].tobytes().decode())
            return cls(z["ids"], matrix, {t: i for i, t in enumerate(terms)})


def _top_rows(scores: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The k best of `rows`, by score, equal scores in row (chunk id) order: the same ranking on every run and
    platform (duplicate passages score exactly alike, and argpartition alone would order them at random)."""
    k = min(k, len(rows))
    kth = np.partition(-scores[rows], k - 1)[k - 1]
    head = rows[-scores[rows] <= kth]  # the k best and every row tied with the k-th
    return head[np.lexsort((head, -scores[head]))][:k]
