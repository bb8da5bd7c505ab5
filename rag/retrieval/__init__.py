"""Retrievers: question in, scored passages out.

dense    cosine similarity of embeddings (FAISS)               rag.retrieval.dense
bm25     BM25 over stemmed English and jieba-segmented Chinese  rag.retrieval.bm25
hybrid   both, fused (the default for chat)                     rag.retrieval.hybrid
"""

from rag.retrieval.bm25 import BM25Retriever
from rag.retrieval.dense import DenseRetriever
from rag.retrieval.hybrid import HybridRetriever
from rag.retrieval.protocol import Retriever

__all__ = ["BM25Retriever", "DenseRetriever", "HybridRetriever", "Retriever"]
