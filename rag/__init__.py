"""Grounded customer-service answers from a company's own documents.

The core (`rag`) holds the knowledge base, embeddings and retrieval; `ingest` turns files into
chunks and feeds the knowledge base; `rag.cli` is the thin command-line edge.
"""

__version__ = "0.1.0"
