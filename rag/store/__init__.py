"""The knowledge base on disk and what fills it:

knowledge_base   KnowledgeBase: opening, searching, atomic incremental writes
chunk_store      the SQL half: documents, chunks, vectors, tokens, manifest (SQLite)
generations      the index half: one vector and one lexical index file per committed generation
vector_index     VectorIndex protocol; FAISS flat, HNSW and IVF
lexical_index    LexicalIndex protocol; BM25 as a sparse matrix
embedders        Embedder protocol; sentence-transformers
"""
