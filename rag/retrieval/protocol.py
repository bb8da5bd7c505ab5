"""What every retriever offers: a question in, scored passages out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

from rag.core.errors import EmbeddingModelMismatch
from rag.core.types import Filters, Passage
from rag.store.embedders import Embedder
from rag.store.knowledge_base import KnowledgeBase


class Retriever(Protocol):
    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        """The k passages most relevant to `question`, best first, that pass `filters`."""
        ...

    def retrieve_many(
        self, questions: Sequence[str], k: int = 5, filters: Filters | None = None
    ) -> list[list[Passage]]:
        """`retrieve` for several questions at once (batched embedding)."""
        ...


class BaseRetriever(ABC):
    """What every retriever does around its own `_search`: check k, skip an empty batch, and pick up a
    generation another process committed (`rag ingest` while serving)."""

    def __init__(self, kb: KnowledgeBase):
        self._kb = kb

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        return self.retrieve_many([question], k, filters)[0]

    def retrieve_many(
        self, questions: Sequence[str], k: int = 5, filters: Filters | None = None
    ) -> list[list[Passage]]:
        check_k(k)
        if not questions:
            return []
        with self._kb.snapshot():  # the version refreshed to is the one searched, whatever commits meanwhile
            self._kb.refresh()
            return self._search(list(questions), k, filters)

    @abstractmethod
    def _search(self, questions: list[str], k: int, filters: Filters | None) -> list[list[Passage]]:
        """Each retriever's own search, for a non-empty batch."""

    def _passages(self, hits: list[list[tuple[int, float]]], kind: str) -> list[list[Passage]]:
        """(chunk id, score) rows turned into passages, the score filed as `kind` (dense or lexical)."""
        chunks = self._kb.chunks(sorted({cid for row in hits for cid, _ in row}))
        return [[Passage(chunks[cid], s, **{f"{kind}_score": s}) for cid, s in row if cid in chunks] for row in hits]


def check_k(k: int) -> None:
    if k <= 0:
        raise ValueError(f"k must be greater than 0. Currently, the k is {k}")


def check_model(kb: KnowledgeBase, embedder: Embedder) -> None:
    if kb.manifest.embedding_model != embedder.name:
        m = kb.manifest
        raise EmbeddingModelMismatch(kb.location, m.embedding_model, m.dimension, embedder.name, embedder.dimension)
