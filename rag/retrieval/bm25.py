"""Lexical retrieval: BM25 over stemmed English words and jieba-segmented Chinese words."""

from __future__ import annotations

from rag.core.types import Filters, Passage
from rag.retrieval.protocol import BaseRetriever


class BM25Retriever(BaseRetriever):
    def _search(self, questions: list[str], k: int, filters: Filters | None) -> list[list[Passage]]:
        return self._passages([self._kb.lexical_search(q, k, filters) for q in questions], "lexical")
