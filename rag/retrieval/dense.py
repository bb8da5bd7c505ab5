"""Dense retrieval: cosine similarity of embeddings (FAISS)."""

from __future__ import annotations

from rag.core.types import Filters, Passage
from rag.retrieval.protocol import BaseRetriever, check_model
from rag.store.embedders import Embedder
from rag.store.knowledge_base import KnowledgeBase


class DenseRetriever(BaseRetriever):
    """Cosine similarity between the question's embedding and the chunks'.

    >>> retriever = DenseRetriever(KnowledgeBase.open("kb"), embedder)   # doctest: +SKIP
    >>> retriever.retrieve("How long does shipping take?", k=3)          # doctest: +SKIP
    """

    def __init__(self, kb: KnowledgeBase, embedder: Embedder):
        check_model(kb, embedder)
        super().__init__(kb)
        self.embedder = embedder

    def _search(self, questions: list[str], k: int, filters: Filters | None) -> list[list[Passage]]:
        vectors = self.embedder.embed(questions)
        return self._passages(self._kb.search(vectors, k, filters), "dense")
