"""Lexical retrieval: BM25 over stemmed English words and jieba-segmented Chinese words."""

from __future__ import annotations

from collections.abc import Sequence

from rag.core.types import Filters, Passage
from rag.retrieval.protocol import BaseRetriever, check_k


class BM25Retriever(BaseRetriever):
    def retrieve_many(
        self, questions: Sequence[str], k: int = 5, filters: Filters | None = None
    ) -> list[list[Passage]]:
        check_k(k)
        self._kb.refresh()
        return self._passages([self._kb.lexical_search(q, k, filters) for q in questions], "lexical")
