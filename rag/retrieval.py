"""Retrievers: question in, scored passages out. `DenseRetriever` searches the knowledge base's vectors."""

from __future__ import annotations

from typing import Protocol, Sequence

from rag.embedders import Embedder
from rag.knowledge_base import KnowledgeBase
from rag.types import Filters, Passage


class Retriever(Protocol):
    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        """The k passages most relevant to `question`, best first, that pass `filters`."""
        ...


class DenseRetriever:
    """Cosine similarity between the question's embedding and the chunks'.

    >>> retriever = DenseRetriever(KnowledgeBase.open("kb"), embedder)   # doctest: +SKIP
    >>> retriever.retrieve("How long does shipping take?", k=3)          # doctest: +SKIP
    """

    def __init__(self, kb: KnowledgeBase, embedder: Embedder):
        if kb.manifest.embedding_model != embedder.name:
            from rag.errors import EmbeddingModelMismatch

            raise EmbeddingModelMismatch(kb.path, kb.manifest.embedding_model, kb.manifest.dimension, embedder.name, embedder.dimension)
        self.kb = kb
        self.embedder = embedder

    def retrieve(self, question: str, k: int = 5, filters: Filters | None = None) -> list[Passage]:
        return self.retrieve_many([question], k, filters)[0]

    def retrieve_many(self, questions: Sequence[str], k: int = 5, filters: Filters | None = None) -> list[list[Passage]]:
        if k <= 0:
            raise ValueError(f"k must be greater than 0. Currently, the k is {k}")
        if not questions:
            return []
        self.kb.refresh()
        vectors = self.embedder.embed(list(questions))
        hits = self.kb.search(vectors, k, filters)
        chunks = self.kb.chunks(sorted({cid for row in hits for cid, _ in row}))
        return [[Passage(chunks[cid], score) for cid, score in row if cid in chunks] for row in hits]
