"""Retrievers: question in, scored passages out.

    dense   cosine similarity of embeddings (FAISS)
    bm25    BM25 over stemmed English words and jieba-segmented Chinese words
    hybrid  both, fused (the default for chat; see HybridRetriever)
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from rag.embedders import Embedder
from rag.errors import EmbeddingModelMismatch
from rag.knowledge_base import KnowledgeBase
from rag.language import cjk_share
from rag.lexical import bm25_tokens, terms
from rag.settings import Settings
from rag.types import Filters, Passage


class Retriever(Protocol):
    kb: KnowledgeBase

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        """The k passages most relevant to `question`, best first, that pass `filters`."""
        ...

    def retrieve_many(self, questions: Sequence[str], k: int = 5, filters: Filters | None = None) -> list[list[Passage]]:
        ...


def _check_k(k: int) -> None:
    if k <= 0:
        raise ValueError(f"k must be greater than 0. Currently, the k is {k}")


class _Base:
    kb: KnowledgeBase

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        return self.retrieve_many([question], k, filters)[0]  # type: ignore[attr-defined]


class DenseRetriever(_Base):
    """Cosine similarity between the question's embedding and the chunks'.

    >>> retriever = DenseRetriever(KnowledgeBase.open("kb"), embedder)   # doctest: +SKIP
    >>> retriever.retrieve("How long does shipping take?", k=3)          # doctest: +SKIP
    """

    def __init__(self, kb: KnowledgeBase, embedder: Embedder):
        _check_model(kb, embedder)
        self.kb = kb
        self.embedder = embedder

    def retrieve_many(self, questions: Sequence[str], k: int = 5, filters: Filters | None = None) -> list[list[Passage]]:
        _check_k(k)
        if not questions:
            return []
        self.kb.refresh()
        vectors = self.embedder.embed(list(questions))
        hits = self.kb.search(vectors, k, filters)
        chunks = self.kb.chunks(sorted({cid for row in hits for cid, _ in row}))
        return [[Passage(chunks[cid], s, dense_score=s) for cid, s in row if cid in chunks] for row in hits]


class BM25Retriever(_Base):
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def retrieve_many(self, questions: Sequence[str], k: int = 5, filters: Filters | None = None) -> list[list[Passage]]:
        _check_k(k)
        self.kb.refresh()
        hits = [self.kb.lexical_search(q, k, filters) for q in questions]
        chunks = self.kb.chunks(sorted({cid for row in hits for cid, _ in row}))
        return [[Passage(chunks[cid], s, lexical_score=s) for cid, s in row if cid in chunks] for row in hits]


class HybridRetriever(_Base):
    """Dense and BM25, fused by a weighted sum of per-query min-max normalised scores.

    Every candidate either retriever proposes gets *both* scores computed exactly (its stored vector against
    the question, its BM25 row against the question's terms), so a passage one retriever ranks 101st is not
    treated as scoring zero - the failure that makes rank fusion lose to its better part. The dense weight
    depends on the question's language: `dense_weight` for languages the embedding model covers,
    `foreign_dense_weight` for the others, mixed in proportion for mixed-language questions. Finally,
    passages nearly identical to a better-ranked one are skipped so the top k are not copies.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        embedder: Embedder,
        *,
        dense_weight: float = 0.75,
        foreign_dense_weight: float = 0.2,
        dense_languages: Sequence[str] = ("en",),
        candidates: int = 100,
        near_duplicate_similarity: float = 0.9,
    ):
        _check_model(kb, embedder)
        for name, value in (("dense_weight", dense_weight), ("foreign_dense_weight", foreign_dense_weight)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1. Currently, the {name} is {value}")
        self.kb = kb
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.foreign_dense_weight = foreign_dense_weight
        self.covers_chinese = "zh" in dense_languages
        self.candidates = candidates
        self.near_duplicate_similarity = near_duplicate_similarity

    def weight(self, question: str) -> float:
        """The dense weight for this question."""
        if self.covers_chinese:
            return self.dense_weight
        share = cjk_share(question)
        return self.dense_weight * (1 - share) + self.foreign_dense_weight * share

    def retrieve_many(self, questions: Sequence[str], k: int = 5, filters: Filters | None = None) -> list[list[Passage]]:
        _check_k(k)
        if not questions:
            return []
        self.kb.refresh()
        pool = max(self.candidates, k)
        vectors = self.embedder.embed(list(questions))
        dense_hits = self.kb.search(vectors, pool, filters)
        allowed = None if filters is None or filters.is_empty() else self.kb.allowed_ids(filters)
        ranked: list[list[tuple[int, float, float, float]]] = []
        for question, vector, dense in zip(questions, vectors, dense_hits):
            tokens = bm25_tokens(question)
            all_lexical = self.kb.lexical.query_scores(tokens)
            lexical = self.kb.lexical.search(tokens, pool, allowed, scores=all_lexical)
            ids = sorted({cid for cid, _ in dense} | {cid for cid, _ in lexical})
            if not ids:
                ranked.append([])
                continue
            stored = self.kb.vectors(ids)
            d = stored @ vector
            b = self.kb.lexical.scores_for(tokens, ids, scores=all_lexical)
            w = self.weight(question)
            fused = w * _min_max(d) + (1 - w) * _min_max(b)
            order = [int(i) for i in np.argsort(-fused, kind="stable")]
            kept = self._without_near_duplicates(order, ids, k)
            ranked.append([(ids[i], float(fused[i]), float(d[i]), float(b[i])) for i in kept])
        chunks = self.kb.chunks(sorted({cid for row in ranked for cid, *_ in row}))
        return [[Passage(chunks[cid], s, dense_score=ds, lexical_score=ls) for cid, s, ds, ls in row if cid in chunks]
                for row in ranked]


    def _without_near_duplicates(self, order: list[int], ids: list[int], k: int) -> list[int]:
        """The first k of `order` skipping passages whose words nearly all repeat a better-ranked one.

        Compared on words, not vectors: an embedding model that does not cover a language maps different
        texts in it to nearly the same vector."""
        if self.near_duplicate_similarity >= 1:
            return order[:k]
        head = order[: 3 * k]
        texts = self.kb.chunks([ids[i] for i in head])
        kept: list[int] = []
        seen: list[set[str]] = []
        for i in head:
            chunk = texts.get(ids[i])
            words = terms(chunk.text) if chunk else set()
            if any(words and other and len(words & other) / len(words | other) >= self.near_duplicate_similarity
                   for other in seen):
                continue
            kept.append(i)
            seen.append(words)
            if len(kept) == k:
                return kept
        return (kept + [i for i in order[3 * k :]])[:k]


def _min_max(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-9 else np.zeros_like(x)


def _check_model(kb: KnowledgeBase, embedder: Embedder) -> None:
    if kb.manifest.embedding_model != embedder.name:
        raise EmbeddingModelMismatch(kb.path, kb.manifest.embedding_model, kb.manifest.dimension, embedder.name, embedder.dimension)


def create_retriever(kind: str, kb: KnowledgeBase, embedder: Embedder | None, settings: Settings) -> Retriever:
    """The retriever named by `kind` (dense, bm25, hybrid), configured from settings."""
    if kind == "bm25":
        return BM25Retriever(kb)
    if embedder is None:
        raise ValueError(f"the {kind} retriever needs an embedder")
    if kind == "dense":
        return DenseRetriever(kb, embedder)
    if kind == "hybrid":
        return HybridRetriever(
            kb, embedder, dense_weight=settings.hybrid_dense_weight,
            foreign_dense_weight=settings.hybrid_foreign_dense_weight, dense_languages=settings.dense_languages,
            candidates=settings.hybrid_candidates, near_duplicate_similarity=settings.near_duplicate_similarity,
        )
    raise ValueError(f"retriever must be one of dense, bm25, hybrid. Currently, the retriever is {kind!r}")
