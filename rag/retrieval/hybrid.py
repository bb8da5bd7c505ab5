"""Hybrid retrieval: dense and BM25 scores of the same candidates, fused."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rag.core.types import Filters, Passage
from rag.retrieval.protocol import BaseRetriever, check_model
from rag.store.embedders import Embedder
from rag.store.knowledge_base import KnowledgeBase
from rag.text.language import cjk_share
from rag.text.lexical import bm25_tokens, terms
from rag.text.similarity import jaccard


class HybridRetriever(BaseRetriever):
    """Dense and BM25, fused by a weighted sum of per-query min-max normalised scores.

    Every candidate either retriever proposes gets *both* scores computed exactly (its stored vector against
    the question, its BM25 row against the question's terms), so a passage one retriever ranks 101st is not
    treated as scoring zero - the failure that makes rank fusion lose to its better part.

    The dense weight is the knowledge base's own when `adaptive` and it has one: measured at ingest on
    pseudo-questions from its content (rag.store.calibration), since no fixed weight suits every collection.
    Otherwise `dense_weight`. For questions in a language the embedding model does not cover, the weight is at
    most `foreign_dense_weight` (mixed in proportion for mixed-language questions). Finally, passages nearly
    identical to a better-ranked one are skipped so the top k are not copies.
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        embedder: Embedder,
        *,
        dense_weight: float = 0.8,
        foreign_dense_weight: float = 0.2,
        dense_languages: Sequence[str] = ("en",),
        candidates: int = 100,
        near_duplicate_similarity: float = 0.9,
        adaptive: bool = True,
    ):
        check_model(kb, embedder)
        for name, value in (("dense_weight", dense_weight), ("foreign_dense_weight", foreign_dense_weight)):
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be between 0 and 1. Currently, the {name} is {value}")
        super().__init__(kb)
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.foreign_dense_weight = foreign_dense_weight
        self.covers_chinese = "zh" in dense_languages
        self.candidates = candidates
        self.near_duplicate_similarity = near_duplicate_similarity
        self.adaptive = adaptive

    def knowledge_base_weight(self) -> float:
        """The dense weight for questions in a language the model covers: measured by the knowledge base, or set."""
        calibration = self._kb.fusion_calibration() if self.adaptive else None
        return calibration.dense_weight if calibration is not None else self.dense_weight

    def describe_weight(self) -> str:
        """What the fusion uses for this knowledge base and why, for `rag eval` and logs."""
        calibration = self._kb.fusion_calibration() if self.adaptive else None
        if calibration is None:
            reason = "adaptive fusion off" if not self.adaptive else "no calibration stored"
            return f"dense weight {self.dense_weight:.2f} (setting; {reason})"
        return f"calibrated at ingest: {calibration.describe()}"

    def weight(self, question: str, base: float | None = None) -> float:
        """The dense weight for this question (`base`: knowledge_base_weight(), if at hand)."""
        base = self.knowledge_base_weight() if base is None else base
        if self.covers_chinese:
            return base
        share = cjk_share(question)
        return base * (1 - share) + min(base, self.foreign_dense_weight) * share

    def _search(self, questions: list[str], k: int, filters: Filters | None) -> list[list[Passage]]:
        pool = max(self.candidates, k)
        vectors = self.embedder.embed(questions)
        dense_hits = self._kb.search(vectors, pool, filters)
        allowed = None if filters is None or filters.is_empty() else self._kb.allowed_ids(filters)
        ranked: list[list[tuple[int, float, float, float]]] = []
        base = self.knowledge_base_weight()
        for question, vector, dense in zip(questions, vectors, dense_hits, strict=True):
            tokens = bm25_tokens(question)
            all_lexical = self._kb.lexical.query_scores(tokens)
            lexical = self._kb.lexical.search(tokens, pool, allowed, scores=all_lexical)
            ids = sorted({cid for cid, _ in dense} | {cid for cid, _ in lexical})
            if not ids:
                ranked.append([])
                continue
            stored = self._kb.vectors(ids)
            d = stored @ vector
            b = self._kb.lexical.scores_for(tokens, ids, scores=all_lexical)
            w = self.weight(question, base)
            fused = w * _min_max(d) + (1 - w) * _min_max(b)
            order = [int(i) for i in np.argsort(-fused, kind="stable")]
            kept = self._without_near_duplicates(order, ids, k)
            ranked.append([(ids[i], float(fused[i]), float(d[i]), float(b[i])) for i in kept])
        chunks = self._kb.chunks(sorted({cid for row in ranked for cid, *_ in row}))
        return [
            [Passage(chunks[cid], s, dense_score=ds, lexical_score=ls) for cid, s, ds, ls in row if cid in chunks]
            for row in ranked
        ]

    def _without_near_duplicates(self, order: list[int], ids: list[int], k: int) -> list[int]:
        """The first k of `order` skipping passages whose words nearly all repeat a better-ranked one.

        Compared on words, not vectors: an embedding model that does not cover a language maps different
        texts in it to nearly the same vector."""
        if self.near_duplicate_similarity >= 1:
            return order[:k]
        head = order[: 3 * k]
        texts = self._kb.chunks([ids[i] for i in head])
        kept: list[int] = []
        seen: list[set[str]] = []
        for i in head:
            chunk = texts.get(ids[i])
            words = terms(chunk.text) if chunk else set()
            if any(jaccard(words, other) >= self.near_duplicate_similarity for other in seen):
                continue
            kept.append(i)
            seen.append(words)
            if len(kept) == k:
                return kept
        return (kept + [i for i in order[3 * k :]])[:k]


def _min_max(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-9 else np.zeros_like(x)
